import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { parseLimit, withEdge } from "../edge-command.ts";
import { formatRecall } from "../edge-format.ts";
import { action, printJson } from "../output.ts";

export function registerRecall(program: Command): void {
  program
    .command("recall")
    .description("find memories by keywords (plain words; no query syntax)")
    .argument("<query...>", "what to look for")
    .option("-n, --limit <n>", "most results, 1..100", "10")
    .option("--json", "print the answer as JSON ({results, routed, took_ms})")
    .action(
      action(async (words: string[], opts: { limit: string; json?: boolean }, cmd: Command) => {
        const query = words.join(" ");
        const limit = parseLimit(opts.limit, "limit");
        if (query.trim().length === 0)
          throw new DionysusError("invalid_input", "the query must not be empty");
        const answer = await withEdge(cmd, (c) => c.recall(query, limit));
        if (opts.json) return printJson(answer);
        process.stdout.write(`${formatRecall(answer, query)}\n`);
      }),
    );
}
