/**
 * A resolved memory filter (src/core/filter.ts) as a PostgreSQL condition over `memories` (aliased
 * `m`), so that search and graph queries narrow inside the query itself. Values are always bound
 * parameters. `scope` is `COLLATE "C"`, so a prefix is an exact byte range; `created_at` is ISO 8601
 * text in UTC and compared in byte order too.
 */
import { type RawBuilder, sql } from "kysely";
import type { ResolvedFilter } from "../../core/filter.ts";

/** `true`, or the filter's conditions joined by `and`. */
export function filterWhere(f: ResolvedFilter): RawBuilder<unknown> {
  const parts: RawBuilder<unknown>[] = [];
  if (f.scope && "exact" in f.scope) parts.push(sql`m.scope = ${f.scope.exact}`);
  else if (f.scope) {
    const p = f.scope.prefix;
    // `p` itself, or anything from `p/` up to (not including) `p0` ('0' follows '/').
    parts.push(sql`(m.scope = ${p} or (m.scope >= ${`${p}/`} and m.scope < ${`${p}0`}))`);
  }
  if (f.tags?.length) parts.push(sql`m.tags @> ${JSON.stringify(f.tags)}::jsonb`);
  if (f.kind) parts.push(sql`m.kind = ${f.kind}`);
  if (f.source) parts.push(sql`m.source = ${f.source}`);
  if (f.since) parts.push(sql`m.created_at collate "C" >= ${f.since}`);
  if (f.until) parts.push(sql`m.created_at collate "C" <= ${f.until}`);
  // The time a query named: occurred_at (ISO 8601, any offset), else created_at, as instants.
  if (f.window)
    parts.push(
      sql`coalesce(m.occurred_at, m.created_at)::timestamptz >= ${f.window.since}::timestamptz and coalesce(m.occurred_at, m.created_at)::timestamptz < ${f.window.until}::timestamptz`,
    );
  // Containment of {key: value} is equality for a scalar value (a number compares as a number).
  for (const [key, value] of Object.entries(f.metadata ?? {}))
    parts.push(sql`m.metadata @> ${JSON.stringify({ [key]: value })}::jsonb`);
  return parts.length === 0 ? sql`true` : sql.join(parts, sql` and `);
}
