import type { Command } from "commander";
import { parseLimit, withEdge } from "../edge-command.ts";
import { formatMemoryLine } from "../edge-format.ts";
import { type FilterFlags, filterFromFlags, withFilterFlags } from "../filter-flags.ts";
import { action, printJson } from "../output.ts";

export function registerList(program: Command): void {
  withFilterFlags(
    program
      .command("list")
      .description("list the most recently written memories")
      .option("--recent <n>", "how many, 1..100", "20")
      .option("--json", "print {memories: [...]} as JSON"),
  ).action(
    action(async (opts: FilterFlags & { recent: string; json?: boolean }, cmd: Command) => {
      const n = parseLimit(opts.recent, "recent");
      const filter = filterFromFlags(opts);
      const memories = await withEdge(cmd, (c) => c.recent(n, filter));
      if (opts.json) return printJson({ memories });
      if (memories.length === 0 && filter) {
        process.stdout.write("No memories match the filter.\n");
        return;
      }
      if (memories.length === 0) {
        process.stdout.write('No memories yet. Add one with: dionysus ingest "..."\n');
        return;
      }
      process.stdout.write(`${memories.map(formatMemoryLine).join("\n")}\n`);
    }),
  );
}
