/**
 * Scheduled pruning, on the real databases: the edge prunes synced queue rows past
 * `queue_retention_s` (never a queued or failed one, and mutation numbers stay gapless after it);
 * the VPS prunes conflict-log entries and failed jobs past their retention, and expired tokens and
 * device codes, and nothing younger (PostgreSQL when TEST_DATABASE_URL is set, else PGlite).
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { sql } from "kysely";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import { pruneVps } from "../../src/vps/admin/prune.ts";
import { tempDir } from "../helpers/harness.ts";
import { openTestBackend, type TestBackend } from "../helpers/vps-app.ts";

const note = (content: string) => ({ content, kind: "episodic" as const, tags: [], metadata: {} });

describe("edge: synced queue rows", () => {
  test("pruned past the retention; queued and failed rows stay; numbering goes on", () => {
    const dir = tempDir("dionysus-prune-");
    try {
      const path = join(dir.path, "edge.db");
      const store = createSqliteStore({ path });
      for (const c of ["a", "b", "c", "d"]) store.create(note(c));
      const db = new Database(path);
      db.run(
        "UPDATE sync_queue SET status = 'synced', payload = NULL, updated_at = '2026-01-01T00:00:00.000Z' WHERE mutation_id IN (1, 2)",
      );
      db.run(
        "UPDATE sync_queue SET status = 'failed', updated_at = '2026-01-01T00:00:00.000Z' WHERE mutation_id = 3",
      );
      db.run("UPDATE sync_queue SET status = 'synced', payload = NULL WHERE mutation_id = 4"); // recent
      expect(store.pruneSynced(Date.parse("2026-06-01T00:00:00Z"))).toBe(2);
      expect(db.query("SELECT mutation_id, status FROM sync_queue ORDER BY mutation_id").all()).toEqual([
        { mutation_id: 3, status: "failed" },
        { mutation_id: 4, status: "synced" },
      ]);
      expect(store.queueCounts()).toMatchObject({ synced: 1, failed: 1, queued: 0 });
      db.run("UPDATE sync_queue SET updated_at = '2026-01-01T00:00:00.000Z' WHERE mutation_id = 4");
      expect(store.pruneSynced(Date.parse("2026-06-01T00:00:00Z"))).toBe(1);
      db.close();
      store.create(note("e"));
      expect(store.queueItems("queued", 10).map((i) => i.mutation_id)).toEqual([5]);
      store.close();
    } finally {
      dir.cleanup();
    }
  });
});

describe("vps: conflicts, tokens, device codes, failed jobs", () => {
  let backend: TestBackend;
  beforeAll(async () => {
    backend = await openTestBackend();
  });
  afterAll(async () => {
    await backend?.close();
  });

  test("each pruned past its retention or expiry, younger rows kept", async () => {
    const db = backend.database.db;
    const now = Date.parse("2026-11-30T00:00:00Z");
    const daysAgo = (d: number) => new Date(now - d * 86_400_000).toISOString();
    await sql`insert into users (id, name) values ('u1', 'pat')`.execute(db);
    for (const [i, at] of [daysAgo(100), daysAgo(10)].entries())
      await sql`insert into conflicts (user_id, memory_id, winner_hlc, loser_hlc, resolved_at)
                values ('u1', ${`m${i}`}, 'w', 'l', ${at})`.execute(db);
    for (const [i, at] of [daysAgo(1), daysAgo(-1)].entries())
      await sql`insert into auth_tokens (user_id, token_hash, kind, device_id, family_id, expires_at)
                values ('u1', ${`t${i}`}, 'refresh', 'd', 'f', ${at})`.execute(db);
    for (const [i, at] of [daysAgo(1), daysAgo(-1)].entries())
      await sql`insert into device_codes (device_code_hash, user_code_hash, device_id, interval_s, expires_at)
                values (${`dc${i}`}, ${`uc${i}`}, 'd', 5, ${at})`.execute(db);
    for (const [i, [status, at]] of [
      ["failed", daysAgo(40)],
      ["failed", daysAgo(5)],
      ["done", daysAgo(40)],
    ].entries())
      await sql`insert into jobs (user_id, id, kind, status, finished_at)
                values ('u1', ${`j${i}`}, 'embed', ${status}, ${at})`.execute(db);

    const counts = await pruneVps(db, {
      conflictRetentionDays: 90,
      failedJobRetentionDays: 30,
      now: () => now,
    });
    expect(counts).toMatchObject({ conflicts: 1, tokens: 1, device_codes: 1, failed_jobs: 1 });
    const left = async (table: string, col: string) =>
      (
        await sql<{ v: string }>`select ${sql.ref(col)} as v from ${sql.table(table)} order by 1`.execute(db)
      ).rows.map((r) => r.v);
    expect(await left("conflicts", "memory_id")).toEqual(["m1"]);
    expect(await left("auth_tokens", "token_hash")).toEqual(["t1"]);
    expect(await left("device_codes", "device_code_hash")).toEqual(["dc1"]);
    expect(await left("jobs", "id")).toEqual(["j1", "j2"]);
    expect(
      await pruneVps(db, { conflictRetentionDays: 90, failedJobRetentionDays: 30, now: () => now }),
    ).toMatchObject({
      conflicts: 0,
      tokens: 0,
      device_codes: 0,
      failed_jobs: 0,
    });
  });
});
