/** The GraphStore contract against a real PostgreSQL: a fresh database, dropped afterwards. */
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { createPostgresGraphStore } from "../../src/vps/graph/postgres/postgres-graph-store.ts";
import { type GraphTables, graphMigration } from "../../src/vps/graph/postgres/schema.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

const adminUrl = process.env.TEST_DATABASE_URL;
const dbName = `dionysus_graph_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`;
let db: Kysely<GraphTables> | undefined;

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

graphStoreContract(
  "postgres",
  {
    async setup() {
      await admin(`CREATE DATABASE ${dbName}`);
      const url = new URL(adminUrl!);
      url.pathname = `/${dbName}`;
      db = new Kysely<GraphTables>({
        dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.href, max: 4 }) }),
      });
      await graphMigration.up(db);
      return createPostgresGraphStore(db);
    },
    async teardown() {
      await db?.destroy();
      if (adminUrl) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    },
  },
  adminUrl ? {} : { skip: "TEST_DATABASE_URL is not set (bash scripts/test.sh sets it)" },
);
