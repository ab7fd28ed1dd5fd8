import type { Command } from "commander";
import { DionysusError, describeIssues } from "../../core/errors.ts";
import { GraphQueryRequest } from "../../core/protocol/heavy.ts";
import { withEdge } from "../edge-command.ts";
import { type FilterFlags, filterFromFlags, withFilterFlags } from "../filter-flags.ts";
import { formatGraph } from "../heavy-format.ts";
import { action, printJson } from "../output.ts";

export function registerGraph(program: Command): void {
  withFilterFlags(
    program
      .command("graph")
      .description(
        "explore the knowledge graph around an entity (a person, place, organisation or topic); runs on the VPS",
      )
      .argument("<entity...>", "the entity's name (any case)")
      .option("-d, --depth <n>", "hops from the entity, 1..3", "1")
      .option("-n, --limit <n>", "most entities and memories, 1..100", "20")
      .option("--json", "print the answer as JSON ({nodes, edges, memories, routed, took_ms})"),
  ).action(
    action(
      async (
        words: string[],
        opts: FilterFlags & { depth: string; limit: string; json?: boolean },
        cmd: Command,
      ) => {
        const entity = words.join(" ");
        const parsed = GraphQueryRequest.safeParse({ entity, depth: opts.depth, limit: opts.limit });
        if (!parsed.success)
          throw new DionysusError(
            "invalid_input",
            describeIssues(parsed.error.issues)
              .replace(/^depth:/, "--depth:")
              .replace(/^limit:/, "--limit:"),
          );
        const filter = filterFromFlags(opts);
        const answer = await withEdge(cmd, (c) => c.graph(filter ? { ...parsed.data, filter } : parsed.data));
        if (opts.json) return printJson(answer);
        process.stdout.write(`${formatGraph(answer, entity)}\n`);
      },
    ),
  );
}
