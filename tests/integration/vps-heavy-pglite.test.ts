/**
 * The heavy-query SQL on embedded PGlite (what `vps serve` uses without a database URL): the
 * migrations, job queue, embeddings, full-text and vector search, graph and consolidation.
 * The full behaviour is tested on PostgreSQL (vps-heavy.test.ts); this checks PGlite runs it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  ConsolidateResponse,
  GraphQueryResponse,
  Job,
  SearchResponse,
} from "../../src/core/protocol/heavy.ts";
import { createVpsDatabase, type VpsDatabase } from "../../src/vps/db/database.ts";
import { TestDevice } from "../helpers/memories.ts";
import { makeTestApp, signIn, type TestApp } from "../helpers/vps-app.ts";

let dir: string;
let database: VpsDatabase;
let t: TestApp;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dionysus-pglite-heavy-"));
  database = await createVpsDatabase({ data_dir: dir });
  t = await makeTestApp({ database, dataDir: dir, url: undefined, close: async () => {} });
});
afterAll(async () => {
  await t?.stop();
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});

test("PGlite: push, worker, search in three modes, graph, consolidation", async () => {
  expect(database.kind).toBe("pglite");
  const s = await signIn(t, "dev-pglite");
  const dev = new TestDevice("dev-pglite");
  const a = dev.create("Had coffee with Ana Lima in Lisbon yesterday.");
  const b = dev.create("had coffee with Ana Lima in Lisbon yesterday!");
  const c = dev.create("The spare key is under the blue flower pot");
  const res = await t.req("/v1/sync/push", {
    method: "POST",
    headers: s.json,
    body: JSON.stringify({ mutations: [a, b, c] }),
  });
  expect(res.status).toBe(200);
  expect(await t.services.heavy.worker.drain()).toBeGreaterThan(0);
  const post = (path: string, body: unknown) =>
    t.req(path, { method: "POST", headers: s.json, body: JSON.stringify(body) });
  for (const mode of ["keyword", "semantic", "hybrid"]) {
    const r = SearchResponse.parse(await (await post("/v1/search", { query: "spare key", mode })).json());
    expect(r.results[0]?.memory.id).toBe(c.id);
  }
  const g = GraphQueryResponse.parse(await (await post("/v1/graph/query", { entity: "Ana Lima" })).json());
  expect(g.nodes.map((n) => n.name)).toContain("Lisbon");
  const started = ConsolidateResponse.parse(await (await post("/v1/consolidate", {})).json());
  expect(ConsolidateResponse.parse(await (await post("/v1/consolidate", {})).json()).started).toBe(false);
  await t.services.heavy.worker.drain();
  const job = Job.parse(
    ((await (await t.req(`/v1/jobs/${started.job.id}`, { headers: s.auth })).json()) as { job: unknown }).job,
  );
  expect(job).toMatchObject({ status: "done", result: { merged_groups: 1, tombstoned: 1 } });
});
