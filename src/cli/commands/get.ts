import type { Command } from "commander";
import { withEdge } from "../edge-command.ts";
import { formatMemory } from "../edge-format.ts";
import { action, printJson } from "../output.ts";

export function registerGet(program: Command): void {
  program
    .command("get")
    .description("show one memory")
    .argument("<id>", "the memory's id")
    .option("--json", "print the memory as JSON")
    .action(
      action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
        const memory = await withEdge(cmd, (c) => c.get(id));
        if (opts.json) return printJson(memory);
        process.stdout.write(`${formatMemory(memory)}\n`);
      }),
    );
}
