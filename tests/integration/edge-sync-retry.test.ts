/**
 * `POST /v1/sync/retry` and `POST /v1/sync/dismiss` on the edge's local API (in process, on a
 * real SQLite store): failed queue items go back under new mutation numbers and the sync engine is
 * told, superseded ones are dismissed, unknown ids are 404, bad bodies 400.
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createEdgeApp } from "../../src/edge/http/app.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";

const dir = mkdtempSync(join(tmpdir(), "dionysus-retry-"));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("retry and dismiss failed items over the local API", async () => {
  const store = createSqliteStore({ path: join(dir, "edge.db") });
  let pokes = 0;
  const app = createEdgeApp({
    store,
    apiToken: null,
    config: { host: "127.0.0.1" },
    sync: {
      onLocalWrite: () => {
        pokes++;
      },
      status: () => ({}),
      syncNow: async () => ({}),
    } as never,
    log: () => {},
  });
  for (const c of ["a", "b", "c"]) store.create({ content: c, kind: "episodic", tags: [], metadata: {} });
  const db = new Database(join(dir, "edge.db"));
  db.run("UPDATE sync_queue SET status = 'failed', last_error = 'refused'");
  db.close();
  const post = (path: string, body: unknown) =>
    app.request(path, {
      method: "POST",
      headers: { host: "127.0.0.1", "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  expect((await post("/v1/sync/retry", { ids: [9] })).status).toBe(404);
  expect((await post("/v1/sync/retry", { ids: ["x"] })).status).toBe(400);
  // An empty list is not "all": refused naming the field, nothing requeued.
  const empty = await post("/v1/sync/retry", { ids: [] });
  expect(empty.status).toBe(400);
  expect(empty.headers.get("content-type")).toContain("application/problem+json");
  expect(JSON.stringify(await empty.json())).toContain("ids");
  expect(store.queueCounts()).toMatchObject({ queued: 0, failed: 3 });
  const r = await post("/v1/sync/retry", { ids: [1, 2] });
  expect(r.status).toBe(200);
  expect(await r.json()).toEqual({
    retried: [
      { from: 1, to: 4 },
      { from: 2, to: 5 },
    ],
    superseded: [],
  });
  expect(pokes).toBe(1);
  expect((await post("/v1/sync/dismiss", { id: 3 })).status).toBe(204);
  expect((await post("/v1/sync/dismiss", { id: 3 })).status).toBe(404);
  expect(store.queueCounts()).toMatchObject({ queued: 2, failed: 0 });
  store.close();
});
