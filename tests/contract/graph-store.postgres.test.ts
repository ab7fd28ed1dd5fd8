/** The GraphStore contract against a real PostgreSQL: a fresh database, dropped afterwards. */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { type GraphTables, graphMigration } from "../../src/vps/db/graph-schema.ts";
import { createPostgresGraphStore } from "../../src/vps/graph/postgres/postgres-graph-store.ts";
import { createTestDatabase, TEST_DATABASE_URL, type TestDatabase } from "../helpers/harness.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

let testDb: TestDatabase | undefined;
let db: Kysely<GraphTables> | undefined;

graphStoreContract(
  "postgres",
  {
    async setup() {
      testDb = await createTestDatabase("dionysus_graph");
      db = new Kysely<GraphTables>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: testDb.url, max: 4 }) }),
      });
      await graphMigration.up(db);
      return createPostgresGraphStore(db);
    },
    async teardown() {
      await db?.destroy();
      await testDb?.drop();
    },
  },
  TEST_DATABASE_URL ? {} : { skip: "TEST_DATABASE_URL is not set (bash scripts/test.sh sets it)" },
);
