/**
 * Migration 0006 (scope, source, occurred_at) on a database written before it, on real PostgreSQL:
 * the memories keep everything they had, get the defaults of an edge of protocol 1 (no scope,
 * source `unknown`, no occurred_at), and travel in the feed with them.
 */
import { describe, expect, test } from "bun:test";
import { Kysely, PostgresDialect, sql } from "kysely";
import { Pool } from "pg";
import { PullResponse } from "../../../src/core/protocol/sync.ts";
import { migrateToLatest, vpsMigrations } from "../../../src/vps/db/migrations.ts";
import type { VpsTables } from "../../../src/vps/db/schema.ts";
import { createSyncService } from "../../../src/vps/sync/service.ts";
import { createTestDatabase, TEST_DATABASE_URL } from "../../helpers/harness.ts";

describe.skipIf(!TEST_DATABASE_URL)("VPS migration 0006 on PostgreSQL", () => {
  test("an old database migrates with its memories intact and the protocol-1 defaults", async () => {
    const tdb = await createTestDatabase();
    const pool = new Pool({ connectionString: tdb.url, max: 2 });
    const db = new Kysely<VpsTables>({ dialect: new PostgresDialect({ pool }) });
    try {
      const before = Object.fromEntries(Object.entries(vpsMigrations).filter(([name]) => name < "0006"));
      expect(await migrateToLatest(db, before)).toContain("0005_fts_cap");
      await sql`insert into users (id, name, seq) values ('u1', 'ana', 1)`.execute(db);
      await sql`
        insert into memories (user_id, id, content, kind, tags, metadata, created_at, updated_at, hlc,
          deleted, origin_device, seq)
        values ('u1', '0190b7e0-0000-7000-8000-000000000001', 'written before scopes', 'episodic',
          '["old"]', '{"k": 1}', '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z',
          '001767225600000-000000-dev', false, 'dev', 1)`.execute(db);

      expect((await migrateToLatest(db))[0]).toBe("0006_scope_source");
      const pulled = PullResponse.parse(
        await createSyncService(db, { max_content_bytes: 1000, max_clock_skew_ms: 60_000 }).pull("u1", {
          limit: 10,
        }),
      );
      if (pulled.status !== "ok") throw new Error("expected ok");
      expect(pulled.changes).toHaveLength(1);
      expect(pulled.changes[0]).toMatchObject({
        content: "written before scopes",
        tags: ["old"],
        metadata: { k: 1 },
        created_at: "2026-01-01T00:00:00.000Z",
        scope: null,
        source: "unknown",
        occurred_at: null,
      });
    } finally {
      await db.destroy();
      await tdb.drop();
    }
  });
});
