/**
 * The filter flags every reading command takes (`--scope`, `--tag`, `--kind`, `--source`,
 * `--since`, `--until`, `--meta key=value`), turned into the one `MemoryFilter` of
 * src/core/filter.ts. A bad value is `invalid_input` (exit 2) naming the flag.
 */
import type { Command } from "commander";
import { DionysusError } from "../core/errors.ts";
import { MemoryFilter, parseMetaPairs } from "../core/filter.ts";

export interface FilterFlags {
  scope?: string;
  tag: string[];
  kind?: string;
  source?: string;
  since?: string;
  until?: string;
  meta: string[];
}

const repeat = (v: string, prev: string[]) => [...prev, v];

/** Adds the filter flags to `cmd`. */
export function withFilterFlags(cmd: Command): Command {
  return cmd
    .option("--scope <scope>", "only this scope (work), a prefix (project/*), or * for every scope")
    .option("--tag <tag>", "only memories with this tag (repeatable: all of them)", repeat, [] as string[])
    .option("--kind <kind>", "only this kind: episodic, identity or summary")
    .option("--source <source>", "only memories written by this client (cli, api, mcp:claude-desktop, …)")
    .option("--since <time>", "created at or after: ISO 8601 or relative (30m, 12h, 7d, 2w)")
    .option("--until <time>", "created at or before: ISO 8601 or relative")
    .option(
      "--meta <key=value>",
      "only memories whose metadata has key = value (repeatable)",
      repeat,
      [] as string[],
    );
}

const FLAG_OF: Record<string, string> = { tags: "--tag", metadata: "--meta" };

/** The filter the flags ask for, or undefined when they ask for none. */
export function filterFromFlags(flags: FilterFlags): MemoryFilter | undefined {
  const raw: Record<string, unknown> = {};
  for (const key of ["scope", "kind", "source", "since", "until"] as const)
    if (flags[key] !== undefined) raw[key] = flags[key];
  if (flags.tag.length > 0) raw.tags = flags.tag;
  if (flags.meta.length > 0) raw.metadata = parseMetaPairs(flags.meta, "--meta");
  if (Object.keys(raw).length === 0) return undefined;
  const r = MemoryFilter.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const key = String(issue.path[0] ?? "");
  const flag = FLAG_OF[key] ?? `--${key}`;
  throw new DionysusError("invalid_input", `${flag}: ${issue.message}`, { details: { field: flag } });
}
