import type { Command } from "commander";
import { parseLimit, withEdge } from "../edge-command.ts";
import { action, printJson } from "../output.ts";
import { formatConflicts } from "../sync-format.ts";

export function registerConflicts(program: Command): void {
  program
    .command("conflicts")
    .description("list versions overwritten by last-write-wins (the local conflict log), newest first")
    .option("--limit <n>", "how many (1..100)", "20")
    .option("--json", "print the conflicts as JSON")
    .action(
      action(async (opts: { limit: string; json?: boolean }, cmd: Command) => {
        const limit = parseLimit(opts.limit, "limit");
        const conflicts = await withEdge(cmd, (c) => c.conflicts(limit));
        if (opts.json) return printJson({ conflicts });
        process.stdout.write(`${formatConflicts(conflicts)}\n`);
      }),
    );
}
