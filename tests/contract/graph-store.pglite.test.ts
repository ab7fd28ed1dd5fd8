/** The GraphStore contract against PGlite (embedded Postgres), through a minimal kysely pool. */
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect } from "kysely";
import { type GraphTables, graphMigration } from "../../src/vps/db/graph-schema.ts";
import { createPostgresGraphStore } from "../../src/vps/graph/postgres/postgres-graph-store.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

let pglite: PGlite | undefined;
let db: Kysely<GraphTables> | undefined;

/** PGlite has one connection: the pool hands it to one kysely connection at a time, so that two
 * transactions never interleave on it. */
function pglitePool(client: PGlite) {
  let queue: Promise<void> = Promise.resolve();
  return {
    async connect() {
      let release!: () => void;
      const previous = queue;
      queue = new Promise<void>((r) => {
        release = r;
      });
      await previous;
      return {
        async query(text: string, params: unknown[]) {
          const r = await client.query<Record<string, unknown>>(text, params);
          return {
            rows: r.rows,
            rowCount: r.affectedRows ?? r.rows.length,
            command: text.trim().split(/\s+/)[0]!.toUpperCase(),
          };
        },
        release: () => release(),
      };
    },
    async end() {},
  };
}

graphStoreContract("pglite", {
  async setup() {
    pglite = await PGlite.create();
    db = new Kysely<GraphTables>({
      dialect: new PostgresDialect({
        pool: pglitePool(pglite) as unknown as ConstructorParameters<typeof PostgresDialect>[0]["pool"],
      }),
    });
    await graphMigration.up(db);
    return createPostgresGraphStore(db);
  },
  async teardown() {
    await db?.destroy();
    await pglite?.close();
  },
});
