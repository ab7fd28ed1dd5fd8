/**
 * A resolved memory filter (src/core/filter.ts) as a SQLite WHERE fragment over `memories`, with
 * its parameters, so that recall and list narrow inside the query itself. Values are always bound
 * parameters; only fixed SQL text is assembled.
 */
import type { SQLQueryBindings } from "bun:sqlite";
import type { ResolvedFilter } from "../../../core/filter.ts";

export interface FilterSql {
  /** `AND …` conditions (empty when the filter narrows nothing). */
  sql: string;
  params: SQLQueryBindings[];
  /** Whether it narrows to a time window (then recall may rank the window's memories directly). */
  window?: boolean;
}

/** The conditions of `f` on the memories table aliased `m`. */
export function filterSql(f: ResolvedFilter): FilterSql {
  const parts: string[] = [];
  const params: SQLQueryBindings[] = [];
  if (f.scope && "exact" in f.scope) {
    parts.push("m.scope = ?");
    params.push(f.scope.exact);
  } else if (f.scope) {
    // `a/b` itself, or anything from `a/b/` up to (not including) `a/b0` ('0' follows '/'):
    // a range the scope index can answer, with no LIKE escaping of '_'.
    parts.push("(m.scope = ? OR (m.scope >= ? AND m.scope < ?))");
    params.push(f.scope.prefix, `${f.scope.prefix}/`, `${f.scope.prefix}0`);
  }
  for (const tag of f.tags ?? []) {
    parts.push("EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?)");
    params.push(tag);
  }
  if (f.kind) {
    parts.push("m.kind = ?");
    params.push(f.kind);
  }
  if (f.source) {
    parts.push("m.source = ?");
    params.push(f.source);
  }
  if (f.since) {
    parts.push("m.created_at >= ?");
    params.push(f.since);
  }
  if (f.until) {
    parts.push("m.created_at <= ?");
    params.push(f.until);
  }
  if (f.window) {
    // `event_at`: occurred_at, else created_at, in UTC (schema.ts), indexed.
    parts.push("m.event_at >= ? AND m.event_at < ?");
    params.push(f.window.since, f.window.until);
  }
  for (const [key, value] of Object.entries(f.metadata ?? {})) {
    if (typeof value === "boolean") {
      parts.push("EXISTS (SELECT 1 FROM json_each(m.metadata) AS j WHERE j.key = ? AND j.type = ?)");
      params.push(key, value ? "true" : "false");
    } else if (typeof value === "number") {
      parts.push(
        "EXISTS (SELECT 1 FROM json_each(m.metadata) AS j WHERE j.key = ? AND j.type IN ('integer', 'real') AND j.atom = ?)",
      );
      params.push(key, value);
    } else {
      parts.push(
        "EXISTS (SELECT 1 FROM json_each(m.metadata) AS j WHERE j.key = ? AND j.type = 'text' AND j.atom = ?)",
      );
      params.push(key, value);
    }
  }
  return { sql: parts.map((p) => ` AND ${p}`).join(""), params, ...(f.window ? { window: true } : {}) };
}
