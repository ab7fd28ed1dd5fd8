/**
 * `vps user delete` with the graph outside the VPS's database (Neo4j in production). Neo4j cannot
 * run on these machines, so a Postgres graph store on a second, separate database stands in for
 * it: the same GraphStore port and contract, a real server. The user's graph there is removed,
 * other users' stays, and when the external store is down nothing is deleted at all.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Kysely, PostgresDialect } from "kysely";
import { Pool } from "pg";
import type { GraphStore } from "../../../src/core/ports/graph-store.ts";
import { deleteUser } from "../../../src/vps/admin/users.ts";
import type { GraphTables } from "../../../src/vps/db/graph-schema.ts";
import { createPostgresGraphStore } from "../../../src/vps/graph/postgres/postgres-graph-store.ts";
import { freePort } from "../../helpers/harness.ts";
import { makeTestApp, openTestBackend, type TestApp, type TestBackend } from "../../helpers/vps-app.ts";

let main: TestBackend;
let t: TestApp;
const opened: TestBackend[] = [];

beforeAll(async () => {
  main = await openTestBackend();
  t = await makeTestApp(main);
});
afterAll(async () => {
  await t?.stop();
  await main?.close();
  for (const b of opened) await b.close();
});

/** A graph store on a database of its own (standing in for Neo4j). */
async function externalGraph(): Promise<GraphStore> {
  const backend = await openTestBackend();
  opened.push(backend);
  return createPostgresGraphStore(backend.database.db);
}

async function userWithGraph(store: GraphStore): Promise<{ name: string; id: string }> {
  const name = `g${crypto.randomUUID().slice(0, 8)}`;
  const u = await t.services.admin.addUser(name, "correct horse battery");
  await store.upsertMemory({
    userId: u.id,
    memoryId: crypto.randomUUID(),
    entities: [
      { name: "Ana", type: "person" },
      { name: "Lisbon", type: "place" },
    ],
    relations: [{ from: "Ana", to: "Lisbon", type: "lives_in" }],
  });
  return { name, id: u.id };
}

const nodes = async (store: GraphStore, userId: string) =>
  (await store.query({ userId, entity: "Ana", depth: 2, limit: 100 })).nodes.length;

describe("user delete with an external graph store (a second PostgreSQL database standing in for Neo4j)", () => {
  test("the deleted user's graph is removed there; another user's stays", async () => {
    const store = await externalGraph();
    const gone = await userWithGraph(store);
    const kept = await userWithGraph(store);
    expect(await nodes(store, gone.id)).toBe(2);
    const deleted = await deleteUser(main.database.db, gone.name, store);
    expect(deleted.id).toBe(gone.id);
    expect(await nodes(store, gone.id)).toBe(0);
    expect(await nodes(store, kept.id)).toBe(2);
    expect(await t.services.auth.findUser(gone.name)).toBeUndefined();
  });

  test("when the external store cannot be reached, the user is not deleted and the error says so", async () => {
    // A graph store whose server is down: nothing listens on its port.
    const down = new Kysely<GraphTables>({
      dialect: new PostgresDialect({
        pool: new Pool({ host: "127.0.0.1", port: freePort(), user: "x", database: "x" }),
      }),
    });
    const name = `g${crypto.randomUUID().slice(0, 8)}`;
    const u = await t.services.admin.addUser(name, "correct horse battery");
    try {
      await expect(deleteUser(main.database.db, name, createPostgresGraphStore(down))).rejects.toMatchObject({
        code: "unavailable",
      });
    } finally {
      await down.destroy();
    }
    expect((await t.services.auth.findUser(name))?.id).toBe(u.id);
  });
});
