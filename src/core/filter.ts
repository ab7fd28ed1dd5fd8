/**
 * The one filter that recall, list/recent, VPS search, graph queries, export and the MCP tools
 * take, so that every way of reading memories narrows them the same way. The stores turn a
 * resolved filter into WHERE clauses of the query itself (FTS5 and SQL, Postgres), never into a
 * post-filter over a top-k, so a filtered recall still returns a full page.
 *
 * | key        | matches                                                                   |
 * | ---------- | ------------------------------------------------------------------------- |
 * | `scope`    | `work`: exactly that scope; `project/*`: `project` and every scope below;  |
 * |            | `*`: any scope or none (overrides a default scope)                          |
 * | `tags`     | memories that have every one of these tags                                |
 * | `kind`     | that kind                                                                 |
 * | `source`   | that writer (`cli`, `api`, `mcp:claude-desktop`, …)                       |
 * | `since`    | `created_at` at or after: ISO 8601, or relative `30m`, `12h`, `7d`, `2w`  |
 * | `until`    | `created_at` at or before (same forms)                                    |
 * | `metadata` | equality on top-level metadata keys (string, number or boolean values)    |
 */
import { z } from "zod";
import { DionysusError, describeIssues } from "./errors.ts";
import { MAX_SCOPE_CHARS, MemoryKind, MemorySource, Scope, Tag, Timestamp } from "./memory.ts";
import type { TimeWindow } from "./time-query.ts";

const RELATIVE_RE = /^(\d{1,6})([mhdw])$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** A point in time: ISO 8601 (with a zone) or a duration before now (`30m`, `12h`, `7d`, `2w`). */
export const TimeBound = z
  .string()
  .trim()
  .refine(
    (s) => RELATIVE_RE.test(s) || Timestamp.safeParse(s).success,
    "must be an ISO 8601 time (2026-01-31T12:00:00Z) or relative: a number and m, h, d or w (30m, 12h, 7d, 2w)",
  );

/** A scope, or a scope prefix `a/b/*`, or `*` (any scope or none). */
export const ScopeFilter = z
  .string()
  .trim()
  .toLowerCase()
  .max(MAX_SCOPE_CHARS + 2, `a scope is at most ${MAX_SCOPE_CHARS} characters`)
  .refine(
    (s) => s === "*" || Scope.safeParse(s.endsWith("/*") ? s.slice(0, -2) : s).success,
    "a scope filter is a scope (work, project/dionysus), a prefix (project/*) or *",
  );

export const MetadataValue = z.union([z.string().max(1024), z.number().finite(), z.boolean()]);
export const MetadataFilter = z
  .record(z.string().min(1, "a metadata key must not be empty").max(128), MetadataValue)
  .refine((m) => Object.keys(m).length <= 16, "at most 16 metadata keys");

/** The filter, as requests carry it. An unknown key is an error naming the key. */
export const MemoryFilter = z
  .strictObject(
    {
      scope: ScopeFilter.optional(),
      tags: z.array(Tag).max(16, "at most 16 tags").optional(),
      kind: MemoryKind.optional(),
      source: MemorySource.optional(),
      since: TimeBound.optional(),
      until: TimeBound.optional(),
      metadata: MetadataFilter.optional(),
    },
    {
      error: (iss) =>
        iss.code === "unrecognized_keys"
          ? `unknown filter key ${iss.keys.map((k) => `"${k}"`).join(", ")}`
          : undefined,
    },
  )
  .superRefine((f, ctx) => {
    if (f.since === undefined || f.until === undefined) return;
    const now = new Date();
    if (instant(f.since, now) > instant(f.until, now))
      ctx.addIssue({ code: "custom", path: ["since"], message: "since is after until" });
  });
export type MemoryFilter = z.infer<typeof MemoryFilter>;

/** A filter with every time absolute (ISO 8601 in UTC, as `toISOString` writes it) and the scope
 * split into its kind. What the stores turn into SQL. */
export interface ResolvedFilter {
  /** `exact`: scope = value; `prefix`: scope = value or starts with `value/`. */
  scope?: { exact: string } | { prefix: string };
  tags?: string[];
  kind?: MemoryKind;
  source?: string;
  since?: string;
  until?: string;
  metadata?: Record<string, string | number | boolean>;
  /** The time a query named (core/time-query.ts): memories whose `occurred_at`, or else
   * `created_at`, is in `[since, until)`. Never from a request's filter. */
  window?: TimeWindow;
}

function instant(bound: string, now: Date): number {
  const rel = RELATIVE_RE.exec(bound);
  if (rel) return now.getTime() - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS];
  return Date.parse(bound);
}

/** Relative times become absolute instants (against `now`); `*` scopes and empty parts drop out.
 * Pure: the stores call it with their own clock. */
export function resolveFilter(filter: MemoryFilter | undefined, now: Date): ResolvedFilter {
  const out: ResolvedFilter = {};
  if (!filter) return out;
  if (filter.scope !== undefined && filter.scope !== "*")
    out.scope = filter.scope.endsWith("/*") ? { prefix: filter.scope.slice(0, -2) } : { exact: filter.scope };
  if (filter.tags?.length) out.tags = [...new Set(filter.tags.map((t) => t.trim()))];
  if (filter.kind) out.kind = filter.kind;
  if (filter.source) out.source = filter.source;
  if (filter.since !== undefined) out.since = new Date(instant(filter.since, now)).toISOString();
  if (filter.until !== undefined) out.until = new Date(instant(filter.until, now)).toISOString();
  if (filter.metadata && Object.keys(filter.metadata).length > 0) out.metadata = { ...filter.metadata };
  return out;
}

/** Whether a resolved filter narrows anything. */
export const isEmptyFilter = (f: ResolvedFilter): boolean => Object.keys(f).length === 0;

/** Parses a filter from a request or flags; a bad one is `invalid_input` naming the field
 * (`filter.scope: …`, `filter: unknown filter key "color"`); `field` null names the keys alone
 * (query parameters, CLI flags). */
export function parseFilter(raw: unknown, field: string | null = "filter"): MemoryFilter {
  const r = MemoryFilter.safeParse(raw ?? {});
  if (r.success) return r.data;
  const prefix = field === null ? [] : [field];
  throw new DionysusError(
    "invalid_input",
    describeIssues(r.error.issues.map((i) => ({ path: [...prefix, ...i.path], message: i.message }))),
    { details: { field: [...prefix, ...(r.error.issues[0]?.path ?? [])].map(String).join(".") } },
  );
}

/**
 * A default scope (the daemon's `scope` setting, `DIONYSUS_SCOPE`, or `--scope` on `dionysus mcp`)
 * applied to a read: a filter without a scope gets `<default>/*` (the default scope and every scope
 * below it). A filter that names a scope, `*` included, keeps its own.
 */
export function withDefaultScope(filter: MemoryFilter | undefined, defaultScope: string | null | undefined) {
  if (!defaultScope || filter?.scope !== undefined) return filter;
  return { ...filter, scope: `${defaultScope}/*` } as MemoryFilter;
}

/** The scope a write gets: its own when it names one (`null` is none), else the default. */
export function writeScope(
  scope: string | null | undefined,
  defaultScope: string | null | undefined,
): string | null {
  return scope !== undefined ? scope : (defaultScope ?? null);
}

/** The query parameters of a list (`GET /v1/memories?scope=&tag=&tag=&kind=&source=&since=&until=&meta=k=v`)
 * as a filter object, to be checked by {@link parseFilter}. `meta` values that look like numbers or
 * booleans are compared as such (`meta=n=3` matches 3, not "3"). */
export function filterFromQuery(params: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of ["scope", "kind", "source", "since", "until"]) {
    const v = params.get(key);
    if (v !== null) out[key] = v;
  }
  const tags = params.getAll("tag");
  if (tags.length > 0) out.tags = tags;
  const meta = params.getAll("meta");
  if (meta.length > 0) out.metadata = parseMetaPairs(meta, "meta");
  return out;
}

/** `key=value` pairs (`--meta`, `meta=`) as a metadata filter; `true`/`false` and numbers are
 * typed, anything else is a string. A pair without `=` is `invalid_input` naming `field`. */
export function parseMetaPairs(
  pairs: readonly string[],
  field: string,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0)
      throw new DionysusError(
        "invalid_input",
        `${field}: expected key=value, got ${JSON.stringify(pair.slice(0, 60))}`,
        {
          details: { field },
        },
      );
    const key = pair.slice(0, at);
    const raw = pair.slice(at + 1);
    out[key] =
      raw === "true" ? true : raw === "false" ? false : /^-?\d+(\.\d+)?$/.test(raw) ? Number(raw) : raw;
  }
  return out;
}
