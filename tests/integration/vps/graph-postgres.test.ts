/** The Postgres graph store inside a caller's transaction, and its migration's down, on a real
 * PostgreSQL (a fresh database, dropped afterwards). */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { uuidv7 } from "../../../src/core/uuid.ts";
import { type GraphTables, graphMigration } from "../../../src/vps/db/graph-schema.ts";
import { extractEntities } from "../../../src/vps/graph/extract/compromise-extractor.ts";
import { createPostgresGraphStore } from "../../../src/vps/graph/postgres/postgres-graph-store.ts";
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from "../../helpers/harness.ts";

let testDb: TestDatabase | undefined;
let db: Kysely<GraphTables>;

describe.skipIf(!TEST_DATABASE_URL)("Postgres graph store on a real PostgreSQL", () => {
  beforeAll(async () => {
    testDb = await createTestDatabase("dionysus_graphtx");
    db = new Kysely<GraphTables>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: testDb.url, max: 2 }) }),
    });
    await graphMigration.up(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await testDb?.drop();
  });

  test("given a transaction, writes belong to it: a rollback leaves nothing", async () => {
    const userId = "tx-user";
    await db
      .transaction()
      .execute(async (trx) => {
        const store = createPostgresGraphStore(trx);
        await store.upsertMemory({
          userId,
          memoryId: uuidv7(),
          ...extractEntities("Ana Lima moved to Lisbon."),
        });
        expect((await store.query({ userId, entity: "ana lima", depth: 1, limit: 10 })).nodes.length).toBe(2);
        throw new Error("roll back");
      })
      .catch((e: Error) => expect(e.message).toBe("roll back"));
    const store = createPostgresGraphStore(db);
    expect((await store.query({ userId, entity: "ana lima", depth: 1, limit: 10 })).nodes).toEqual([]);
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM graph_entities`.execute(db);
    expect(rows[0]!.n).toBe(0);
  });

  test("extractor output goes straight into the store", async () => {
    const userId = "pipeline-user";
    const store = createPostgresGraphStore(db);
    const m = uuidv7();
    await store.upsertMemory({
      userId,
      memoryId: m,
      ...extractEntities("Had coffee with Ana Lima in Lisbon. She works at Google on the garden project."),
    });
    const r = await store.query({ userId, entity: "Ana Lima", depth: 2, limit: 20 });
    expect(r.nodes.map((n) => n.name).sort()).toEqual(["Ana Lima", "Lisbon", "coffee"].sort());
    expect(r.memories).toEqual([{ memory_id: m, entities: expect.any(Array) }]);
  });

  test("the migration's down removes the tables and up recreates them", async () => {
    await graphMigration.down!(db);
    const gone = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name LIKE 'graph\\_%'`.execute(db);
    expect(gone.rows[0]!.n).toBe(0);
    await graphMigration.up(db);
    const back = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name LIKE 'graph\\_%'`.execute(db);
    expect(back.rows[0]!.n).toBe(4);
  });
});
