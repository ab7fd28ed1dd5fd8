#!/usr/bin/env bun
/**
 * Pruning benchmark: how long one scheduled pruning run takes with N rows to delete. The edge
 * prunes N synced queue rows (beside N memories); the VPS prunes N expired tokens, N old conflict
 * entries, N expired device codes and N old failed jobs (PostgreSQL with --database-url, else
 * embedded PGlite). Each is timed --runs times on fresh data (median, p95). Appends a section to
 * bench/RESULTS.md unless --no-write.
 *
 *   bun run bench/prune.ts -- --n 100000 --database-url postgres://…
 */
import { Database } from "bun:sqlite";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { sql } from "kysely";
import { VpsConfig } from "../src/core/config.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import { pruneVps } from "../src/vps/admin/prune.ts";
import { createVpsDatabase } from "../src/vps/db/database.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    runs: { type: "string", default: "3" },
    "database-url": { type: "string" },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const RUNS = Number(args.runs);
const work = mkdtempSync(join(tmpdir(), "dionysus-bench-prune-"));
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return `${at(0.5).toFixed(0)} ms | ${at(0.95).toFixed(0)} ms`;
};

// ---- edge ---------------------------------------------------------------------------------
const edgeMs: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const path = join(mkdtempSync(join(work, "e-")), "edge.db");
  createSqliteStore({ path }).close();
  const db = new Database(path);
  db.run("BEGIN");
  const mem = db.prepare(
    `INSERT INTO memories (id, content, kind, tags, metadata, created_at, updated_at, hlc, deleted, origin_device, origin)
     VALUES (?, 'x', 'episodic', '[]', '{}', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', ?, 0, 'd', 'local')`,
  );
  const row = db.prepare(
    `INSERT INTO sync_queue (mutation_id, memory_id, op, hlc, status, created_at, updated_at)
     VALUES (?, ?, 'create', ?, 'synced', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
  );
  for (let i = 1; i <= N; i++) {
    const id = crypto.randomUUID();
    const hlc = `${String(i).padStart(15, "0")}-000000-d`;
    mem.run(id, hlc);
    row.run(i, id, hlc);
  }
  db.run("COMMIT");
  db.close();
  const store = createSqliteStore({ path });
  const t = performance.now();
  const pruned = store.pruneSynced(Date.parse("2026-06-01T00:00:00Z"));
  edgeMs.push(performance.now() - t);
  if (pruned !== N) throw new Error(`pruned ${pruned}, expected ${N}`);
  store.close();
}

// ---- VPS ----------------------------------------------------------------------------------
const vpsMs: number[] = [];
const url = args["database-url"];
for (let r = 0; r < RUNS; r++) {
  const database = await createVpsDatabase(
    VpsConfig.parse({ data_dir: mkdtempSync(join(work, "v-")), ...(url ? { database_url: url } : {}) }),
  );
  const db = database.db;
  const u = `bench-${r}-${Date.now()}`;
  await sql`insert into users (id, name) values (${u}, ${u})`.execute(db);
  const old = "2020-01-01T00:00:00Z";
  await sql`insert into conflicts (user_id, memory_id, winner_hlc, loser_hlc, resolved_at)
            select ${u}, 'm' || g, 'w', 'l', ${old}::timestamptz from generate_series(1, ${N}) g`.execute(db);
  await sql`insert into auth_tokens (user_id, token_hash, kind, device_id, family_id, expires_at)
            select ${u}, ${u} || g, 'access', 'd', 'f', ${old}::timestamptz from generate_series(1, ${N}) g`.execute(
    db,
  );
  await sql`insert into device_codes (device_code_hash, user_code_hash, device_id, interval_s, expires_at)
            select ${u} || 'd' || g, ${u} || 'u' || g, 'd', 5, ${old}::timestamptz from generate_series(1, ${N}) g`.execute(
    db,
  );
  await sql`insert into jobs (user_id, id, kind, status, finished_at)
            select ${u}, 'j' || g, 'embed', 'failed', ${old}::timestamptz from generate_series(1, ${N}) g`.execute(
    db,
  );
  const c = await pruneVps(db, { conflictRetentionDays: 90, failedJobRetentionDays: 30 });
  vpsMs.push(c.ms);
  if (c.conflicts < N || c.tokens < N || c.device_codes < N || c.failed_jobs < N)
    throw new Error(`pruned too few: ${JSON.stringify(c)}`);
  await sql`delete from users where id = ${u}`.execute(db);
  await database.close();
}

const now = new Date().toISOString().slice(0, 16).replace("T", " ");
const section = `
## Pruning (\`bun run bench/prune.ts\`)

### ${now} UTC — Bun ${Bun.version}, ${availableParallelism()} CPUs, 2-core shared VM, loaded by parallel work (load average ${loadavg()[0]!.toFixed(1)})

One pruning run, ${RUNS} runs on fresh data, median | p95:

| what | median | p95 |
| --- | --- | --- |
| edge: ${N.toLocaleString("en")} synced queue rows | ${stats(edgeMs)} |
| VPS (${url ? "PostgreSQL" : "PGlite"}): ${N.toLocaleString("en")} each of conflicts, expired tokens, expired device codes, failed jobs | ${stats(vpsMs)} |
`;
process.stdout.write(section);
if (!args["no-write"]) appendFileSync(join(ROOT, "bench/RESULTS.md"), section);
rmSync(work, { recursive: true, force: true });
