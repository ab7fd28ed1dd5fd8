/** The GraphStore contract against PGlite (embedded Postgres), through the VPS's own PGlite dialect. */
import { PGlite } from "@electric-sql/pglite";
import { Kysely } from "kysely";
import { type GraphTables, graphMigration } from "../../src/vps/db/graph-schema.ts";
import { PgliteDialect, PgliteGuard } from "../../src/vps/db/pglite-dialect.ts";
import { createPostgresGraphStore } from "../../src/vps/graph/postgres/postgres-graph-store.ts";
import { graphStoreContract } from "./graph-store.contract.ts";

let pglite: PGlite | undefined;
let db: Kysely<GraphTables> | undefined;

graphStoreContract("pglite", {
  async setup() {
    pglite = await PGlite.create();
    db = new Kysely<GraphTables>({ dialect: new PgliteDialect(pglite, new PgliteGuard("(in memory)")) });
    await graphMigration.up(db);
    return createPostgresGraphStore(db);
  },
  async teardown() {
    await db?.destroy();
    await pglite?.close();
  },
});
