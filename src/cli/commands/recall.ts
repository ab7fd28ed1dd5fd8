import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { RecallMode, RecallRoute, TimeUse } from "../../core/protocol/edge-api.ts";
import { parseLimit, withEdge } from "../edge-command.ts";
import { formatRecall } from "../edge-format.ts";
import { type FilterFlags, filterFromFlags, withFilterFlags } from "../filter-flags.ts";
import { action, printJson } from "../output.ts";

export function registerRecall(program: Command): void {
  withFilterFlags(
    program
      .command("recall")
      .description(
        "find memories (plain words, no query syntax): keywords locally, semantic and hybrid search on the VPS",
      )
      .argument("<query...>", "what to look for")
      .option("-n, --limit <n>", "most results, 1..100", "10")
      .option(
        "-m, --mode <mode>",
        "auto (hybrid for questions, keyword otherwise), keyword, semantic or hybrid",
        "auto",
      )
      .option("-r, --route <route>", "auto, local (never the VPS) or vps (never local)", "auto")
      .option(
        "--time <use>",
        "a time the query names (yesterday, in May 2023): boost its memories, filter to them, or off",
        "boost",
      )
      .option("--json", "print the answer as JSON ({results, routed, took_ms, degraded?, reason?, time?})"),
  ).action(
    action(
      async (
        words: string[],
        opts: FilterFlags & { limit: string; mode: string; route: string; time: string; json?: boolean },
        cmd: Command,
      ) => {
        const query = words.join(" ");
        const limit = parseLimit(opts.limit, "limit");
        if (query.trim().length === 0)
          throw new DionysusError("invalid_input", "the query must not be empty");
        const mode = RecallMode.safeParse(opts.mode);
        if (!mode.success)
          throw new DionysusError("invalid_input", `--mode must be one of ${RecallMode.options.join(", ")}`);
        const route = RecallRoute.safeParse(opts.route);
        if (!route.success)
          throw new DionysusError(
            "invalid_input",
            `--route must be one of ${RecallRoute.options.join(", ")}`,
          );
        const time = TimeUse.safeParse(opts.time);
        if (!time.success)
          throw new DionysusError("invalid_input", `--time must be one of ${TimeUse.options.join(", ")}`);
        const filter = filterFromFlags(opts);
        const answer = await withEdge(cmd, (c) =>
          c.recall(query, limit, {
            mode: mode.data,
            route: route.data,
            ...(time.data !== "boost" ? { time: time.data } : {}),
            ...(filter ? { filter } : {}),
          }),
        );
        if (opts.json) return printJson(answer);
        process.stdout.write(`${formatRecall(answer, query)}\n`);
      },
    ),
  );
}
