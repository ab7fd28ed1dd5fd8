import type { Command } from "commander";
import { withEdge } from "../edge-command.ts";
import { action, printJson } from "../output.ts";

export function registerForget(program: Command): void {
  program
    .command("forget")
    .description("delete a memory (its deletion is synced like any write)")
    .argument("<id>", "the memory's id")
    .option("--json", "print {id, deleted: true} as JSON")
    .action(
      action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
        await withEdge(cmd, (c) => c.forget(id));
        if (opts.json) return printJson({ id, deleted: true });
        process.stdout.write(`Forgot ${id}; the deletion is queued for sync.\n`);
      }),
    );
}
