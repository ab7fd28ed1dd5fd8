/**
 * Whether the VPS schema could be spread over a Citus cluster (distributed PostgreSQL) as it is:
 * every per-user table distributed by `user_id`, all of them co-located, and the few global tables
 * as reference tables (copied to every node) or kept on the coordinator. Citus cannot be installed
 * here (Debian ships no package), so this checks its rules for distributed tables on a real
 * PostgreSQL with every migration applied, from the catalog, so that a migration breaking them
 * fails here:
 * - a distributed table has the distribution column, NOT NULL;
 * - its primary key, unique constraints and unique indexes (partial ones too) include that column,
 *   and it has no exclusion constraint;
 * - a foreign key from a distributed table points at a reference table, or at a co-located
 *   distributed table with `user_id` matched to `user_id`;
 * - a reference table's foreign keys point only at reference tables.
 * Any table not listed below as global counts as per-user: a new table is held to the rules
 * unless it is added here with its reason.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Kysely, PostgresDialect, sql } from "kysely";
import { Pool } from "pg";
import { migrateToLatest } from "../../../src/vps/db/migrations.ts";
import type { VpsTables } from "../../../src/vps/db/schema.ts";
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from "../../helpers/harness.ts";

type Placement =
  | { kind: "reference"; why: string }
  | { kind: "own-key"; column: string; why: string }
  | { kind: "local"; why: string };

/** The tables that are not per-user, and where they would go on Citus. */
const GLOBAL: Record<string, Placement> = {
  users: {
    kind: "reference",
    why: "one row per user, read by name at sign-in (UNIQUE(name) cannot hold on a table distributed by id); its seq counter is written by every push, so on Citus it should first move to a per-user table",
  },
  device_codes: {
    kind: "reference",
    why: "a sign-in in progress is found by its code before the user is known",
  },
  server_meta: { kind: "reference", why: "one row: the server's epoch" },
  rate_limits: {
    kind: "own-key",
    column: "key",
    why: "counters keyed by device, user or client address; never joined, so distributed by their own key",
  },
  dionysus_migrations: { kind: "local", why: "the migrator's bookkeeping, on the coordinator" },
  dionysus_migrations_lock: { kind: "local", why: "the migrator's lock, on the coordinator" },
};

const DIST = "user_id";

interface Constraint {
  table: string;
  name: string;
  type: "p" | "u" | "f" | "x";
  columns: string[];
  ref_table: string | null;
  ref_columns: string[] | null;
}

describe.skipIf(!TEST_DATABASE_URL)("the VPS schema follows Citus's rules for distributed tables", () => {
  let tdb: TestDatabase;
  let db: Kysely<VpsTables>;
  let tables: string[];
  let notNull: Map<string, Set<string>>;
  let constraints: Constraint[];
  let uniqueIndexes: Array<{ table: string; name: string; columns: string[] }>;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    db = new Kysely<VpsTables>({
      dialect: new PostgresDialect({ pool: new Pool({ connectionString: tdb.url, max: 2 }) }),
    });
    await migrateToLatest(db);
    tables = (
      await sql<{ name: string }>`
        select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = current_schema() and c.relkind in ('r', 'p') order by 1`.execute(db)
    ).rows.map((r) => r.name);
    const cols = await sql<{ table: string; column: string }>`
      select table_name as table, column_name as column from information_schema.columns
      where table_schema = current_schema() and is_nullable = 'NO'`.execute(db);
    notNull = new Map();
    for (const r of cols.rows) notNull.set(r.table, (notNull.get(r.table) ?? new Set()).add(r.column));
    constraints = (
      await sql<Constraint>`
        select t.relname as table, k.conname as name, k.contype as type,
          array(select a.attname from unnest(k.conkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.conrelid and a.attnum = u.n order by u.i)::text[] as columns,
          r.relname as ref_table,
          case when k.confrelid = 0 then null else array(select a.attname from unnest(k.confkey) with ordinality u(n, i)
            join pg_attribute a on a.attrelid = k.confrelid and a.attnum = u.n order by u.i)::text[] end as ref_columns
        from pg_constraint k join pg_class t on t.oid = k.conrelid
        join pg_namespace n on n.oid = t.relnamespace left join pg_class r on r.oid = k.confrelid
        where n.nspname = current_schema() and k.contype in ('p', 'u', 'f', 'x')`.execute(db)
    ).rows;
    uniqueIndexes = (
      await sql<{ table: string; name: string; columns: string[] }>`
        select t.relname as table, ic.relname as name,
          array(select a.attname from unnest(i.indkey::int2[]) u(n)
            join pg_attribute a on a.attrelid = i.indrelid and a.attnum = u.n)::text[] as columns
        from pg_index i join pg_class t on t.oid = i.indrelid join pg_class ic on ic.oid = i.indexrelid
        join pg_namespace n on n.oid = t.relnamespace
        where n.nspname = current_schema() and i.indisunique`.execute(db)
    ).rows;
  });
  afterAll(async () => {
    await db?.destroy();
    await tdb?.drop();
  });

  const distributed = () => tables.filter((t) => !(t in GLOBAL));
  const placement = (t: string): string => GLOBAL[t]?.kind ?? "distributed";

  test("the catalog was read (every migration applied)", () => {
    expect(tables).toContain("memories");
    expect(distributed().length).toBeGreaterThanOrEqual(15);
    expect(constraints.filter((c) => c.type === "f").length).toBeGreaterThan(10);
  });

  test("every global table exists and has its reason", () => {
    for (const [t, p] of Object.entries(GLOBAL)) {
      expect(tables).toContain(t);
      expect(p.why.length).toBeGreaterThan(10);
    }
  });

  test("every per-user table has a NOT NULL user_id", () => {
    const bad = distributed().filter((t) => !notNull.get(t)?.has(DIST));
    expect(bad).toEqual([]);
  });

  test("primary keys, unique constraints and unique indexes of per-user tables include user_id", () => {
    const dist = new Set(distributed());
    const bad = [
      ...constraints
        .filter((c) => dist.has(c.table) && (c.type === "p" || c.type === "u") && !c.columns.includes(DIST))
        .map((c) => `${c.table}.${c.name}`),
      ...uniqueIndexes
        .filter((i) => dist.has(i.table) && !i.columns.includes(DIST))
        .map((i) => `${i.table}.${i.name}`),
      ...constraints
        .filter((c) => dist.has(c.table) && c.type === "x")
        .map((c) => `${c.table}.${c.name} (exclusion)`),
    ];
    expect(bad).toEqual([]);
    // Every per-user table has a primary key (Citus needs one for a distributed table's upserts).
    const withPk = new Set(constraints.filter((c) => c.type === "p").map((c) => c.table));
    expect(distributed().filter((t) => !withPk.has(t))).toEqual([]);
  });

  test("foreign keys of per-user tables point at reference tables or co-locate on user_id", () => {
    const bad: string[] = [];
    for (const fk of constraints.filter((c) => c.type === "f")) {
      const from = placement(fk.table);
      const to = placement(fk.ref_table!);
      const at = `${fk.table}.${fk.name} → ${fk.ref_table}(${fk.ref_columns!.join(", ")})`;
      if (from === "distributed") {
        if (to === "reference") continue;
        const i = fk.columns.indexOf(DIST);
        if (to === "distributed" && i >= 0 && fk.ref_columns![i] === DIST) continue;
        bad.push(`${at}: a distributed table may point only at a reference table or at user_id`);
      } else if (from === "reference") {
        if (to !== "reference") bad.push(`${at}: a reference table may point only at reference tables`);
      } else bad.push(`${at}: a ${from} table should have no foreign keys`);
    }
    expect(bad).toEqual([]);
  });

  test("a table distributed by its own key has that key as its primary key and nothing points at it", () => {
    for (const [t, p] of Object.entries(GLOBAL)) {
      if (p.kind !== "own-key") continue;
      expect(constraints.find((c) => c.table === t && c.type === "p")?.columns).toEqual([p.column]);
      expect(constraints.filter((c) => c.type === "f" && (c.table === t || c.ref_table === t))).toEqual([]);
    }
  });
});
