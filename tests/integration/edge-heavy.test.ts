/**
 * The edge's heavy-query routing, in-process: the edge app over a real SQLite store, talking over
 * real HTTP to an in-process VPS (real PostgreSQL, or PGlite when TEST_DATABASE_URL is unset) that
 * is configured with a fake Ollama (no Ollama can run here). Covers the routing decisions, the
 * answer cache (hits, key normalisation, expiry with a driven clock, TTL 0), degradation when
 * offline, logged out or when the VPS fails, graph/consolidate/jobs/ask through the edge, and
 * vectors arriving through the change feed.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { RecallResponse } from "../../src/core/protocol/edge-api.ts";
import { AskEvent, ConsolidateResponse, Job } from "../../src/core/protocol/heavy.ts";
import { PullResponse } from "../../src/core/protocol/sync.ts";
import { createVpsQueryClient, GraphAnswer, type VpsQueryClient } from "../../src/edge/heavy/service.ts";
import { createEdgeApp } from "../../src/edge/http/app.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { writeCredentials } from "../../src/edge/sync/credentials.ts";
import type { TokenSource } from "../../src/edge/sync/vps-client.ts";
import { remoteChange } from "../contract/edge-store.contract.ts";
import { type FakeOllama, startFakeOllama } from "../helpers/fake-ollama.ts";
import { freePort } from "../helpers/harness.ts";
import { TestDevice } from "../helpers/memories.ts";
import { makeTestApp, openTestBackend, signIn, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

let ollama: FakeOllama;
let backend: TestBackend;
let vps: TestApp;
let server: ReturnType<typeof Bun.serve>;
let vpsUrl: string;
let session: Awaited<ReturnType<typeof signIn>>;
const dirs: string[] = [];
const closers: Array<() => void> = [];

const tokens: TokenSource = {
  accessToken: async () => session.tokens.access_token,
  refresh: async () => false,
};

interface Edge {
  app: Hono;
  store: EdgeStore;
  heavy: VpsQueryClient;
  state: { online: boolean; clock: number };
}

/** An edge app on a fresh data dir; `login` writes credentials for `url` (default: the VPS),
 * marked `reauth_required` with `reauth`. */
function makeEdge(
  opts: { login?: boolean; reauth?: boolean; url?: string; ttlS?: number; versioned?: boolean } = {},
): Edge {
  const dataDir = mkdtempSync(join(tmpdir(), "dionysus-edge-heavy-"));
  dirs.push(dataDir);
  if (opts.login ?? true)
    writeCredentials(dataDir, {
      vps_url: opts.url ?? vpsUrl,
      user_id: session.tokens.user_id ?? "u",
      device_id: "edge-heavy",
      access_token: session.tokens.access_token,
      access_expires_at: Date.now() + 3600_000,
      refresh_token: session.tokens.refresh_token,
      reauth_required: opts.reauth ?? false,
    });
  const store = createSqliteStore({ path: join(dataDir, "edge.db") });
  const state = { online: true, clock: Date.now() };
  const heavy = createVpsQueryClient({
    dataDir,
    cacheTtlS: opts.ttlS ?? 300,
    tokens: () => tokens,
    online: () => state.online,
    now: () => state.clock,
    timeoutMs: 5000,
    // As the daemon does: answers are keyed by the store's data version.
    ...(opts.versioned ? { dataVersion: () => store.dataVersion() } : {}),
  });
  closers.push(() => {
    heavy.close();
    store.close();
  });
  return { app: createEdgeApp({ store, heavy, apiToken: null, log: () => {} }), store, heavy, state };
}

const post = (app: Hono, path: string, body: unknown) =>
  app.request(path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });

async function recall(app: Hono, body: Record<string, unknown>) {
  const res = await post(app, "/v1/recall", body);
  expect(res.status).toBe(200);
  return RecallResponse.parse(await res.json());
}

const device = new TestDevice("dev-heavy");
const ids: Record<string, string> = {};

beforeAll(async () => {
  ollama = startFakeOllama();
  backend = await openTestBackend();
  vps = await makeTestApp(backend, { ollama_url: ollama.url });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req, srv) => vps.app.fetch(req, srv) });
  vpsUrl = `http://127.0.0.1:${server.port}`;
  session = await signIn(vps, "dev-heavy");
  const notes = {
    key: "The spare key is under the blue flower pot by the back door",
    lunch: "lunch with Marta and Joao at the harbour on Sunday",
    insurance: "Renewed the car insurance until March",
    dup1: "Picked up the dry cleaning on Main Street",
    dup2: "picked up the dry cleaning on Main Street!",
  };
  const muts = Object.entries(notes).map(([k, text]) => {
    const m = device.create(text);
    ids[k] = m.id;
    return m;
  });
  const res = await vps.req("/v1/sync/push", {
    method: "POST",
    headers: session.json,
    body: JSON.stringify({ mutations: muts }),
  });
  expect(res.status).toBe(200);
  await vps.services.heavy.worker.drain();
});

afterAll(async () => {
  for (const c of closers) c();
  server?.stop(true);
  await vps?.stop();
  await backend?.close();
  ollama?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("recall routing on the edge", () => {
  test("keyword stays local; semantic goes to the VPS, then comes from the cache until it expires", async () => {
    const e = makeEdge();
    e.store.create({
      content: "spare key copy made at the hardware store",
      kind: "episodic",
      tags: [],
      metadata: {},
    });
    const kw = await recall(e.app, { query: "spare key" });
    expect(kw.routed).toBe("local");
    expect(kw.degraded).toBeUndefined();
    expect(kw.results[0]?.memory.origin).toBe("local");

    const first = await recall(e.app, { query: "where is the spare key", mode: "semantic", limit: 3 });
    expect(first.routed).toBe("vps");
    expect(first.results[0]?.memory.id).toBe(ids.key!);
    expect(first.results[0]?.memory.origin).toBe("vps");
    expect(first.results[0]?.memory.embedding).toBeUndefined();
    const searches = () => vps.logs.filter((l) => l.route === "/v1/search").length;
    const before = searches();
    // Same query up to case, spacing and punctuation, and a different route: one cache entry.
    const second = await recall(e.app, {
      query: "Where is  the SPARE key?",
      mode: "semantic",
      limit: 3,
      route: "vps",
    });
    expect(second.routed).toBe("cache");
    expect(second.results).toEqual(first.results);
    expect(searches()).toBe(before);
    // Another limit or mode is another entry.
    expect(
      (await recall(e.app, { query: "where is the spare key", mode: "semantic", limit: 4 })).routed,
    ).toBe("vps");
    e.state.clock += 299_000;
    expect(
      (await recall(e.app, { query: "where is the spare key", mode: "semantic", limit: 3 })).routed,
    ).toBe("cache");
    e.state.clock += 2_000;
    expect(
      (await recall(e.app, { query: "where is the spare key", mode: "semantic", limit: 3 })).routed,
    ).toBe("vps");
  });

  test("auto: a question goes to the VPS as hybrid; route local stays on the device; route vps forces the VPS", async () => {
    const e = makeEdge();
    const q = await recall(e.app, { query: "when does my car insurance end?" });
    expect(q.routed).toBe("vps");
    expect(q.results[0]?.memory.id).toBe(ids.insurance!);
    const local = await recall(e.app, { query: "car insurance", mode: "semantic", route: "local" });
    expect(local.routed).toBe("local");
    expect(local.degraded).toBeUndefined();
    const forced = await recall(e.app, { query: "insurance", mode: "keyword", route: "vps" });
    expect(forced.routed).toBe("vps");
    expect(forced.results[0]?.memory.id).toBe(ids.insurance!);
  });

  test("a local write or a pull that brings changes is never answered from a cached answer made before it", async () => {
    const e = makeEdge({ versioned: true });
    const ask = async () => (await recall(e.app, { query: "spare key", mode: "semantic", limit: 3 })).routed;
    expect(await ask()).toBe("vps");
    expect(await ask()).toBe("cache");
    // A local write, queued for the VPS: the cached answer is from before it.
    e.store.create({
      content: "the spare key moved to the drawer",
      kind: "episodic",
      tags: [],
      metadata: {},
    });
    expect(await ask()).toBe("vps");
    expect(await ask()).toBe("cache");
    // A private write never reaches the VPS: its answers stay valid.
    e.store.create({
      content: "private note on the key",
      kind: "episodic",
      tags: [],
      metadata: {},
      private: true,
    });
    expect(await ask()).toBe("cache");
    // A pull that applied changes (the cursor moved).
    e.store.applyChanges([remoteChange({ ms: Date.now(), content: "the key was copied again" })], "e1.9");
    expect(await ask()).toBe("vps");
  });

  test("a TTL of 0 turns the cache off", async () => {
    const e = makeEdge({ ttlS: 0 });
    expect((await recall(e.app, { query: "harbour lunch", mode: "hybrid" })).routed).toBe("vps");
    expect((await recall(e.app, { query: "harbour lunch", mode: "hybrid" })).routed).toBe("vps");
  });

  test("offline: semantic and hybrid answer from the device's vectors and say why; route vps and graph answer 503", async () => {
    const e = makeEdge();
    e.state.online = false;
    for (const content of [
      "insurance papers are in the drawer",
      "The puppy chewed my new slippers",
      "Quarterly tax returns are due in April",
    ])
      e.store.create({ content, kind: "episodic", tags: [], metadata: {} });
    const r = await recall(e.app, { query: "insurance", mode: "semantic" });
    expect(r).toMatchObject({ routed: "local", degraded: true });
    expect(r.reason).toBe(
      "semantic search runs on the VPS and the VPS is unreachable; answered on this device with its built-in embedder",
    );
    expect(r.results[0]?.memory.content).toContain("drawer");
    // Meaning without a shared word: keyword search finds nothing, the device's vectors do.
    expect((await recall(e.app, { query: "dog", mode: "keyword" })).results).toEqual([]);
    const dog = await recall(e.app, { query: "dog", mode: "semantic" });
    expect(dog.routed).toBe("local");
    expect(dog.results[0]?.memory.content).toBe("The puppy chewed my new slippers");
    const hybrid = await recall(e.app, { query: "my dog and the insurance", mode: "hybrid" });
    expect(hybrid.routed).toBe("local");
    expect(
      hybrid.results
        .slice(0, 2)
        .map((h) => h.memory.content)
        .sort(),
    ).toEqual(["The puppy chewed my new slippers", "insurance papers are in the drawer"]);
    // An edit re-embeds: the old meaning is gone, the new one is found.
    const puppy = dog.results[0]!.memory.id;
    e.store.update(puppy, { content: "Booked a flight to Lisbon" });
    expect((await recall(e.app, { query: "airplane trip", mode: "semantic" })).results[0]?.memory.id).toBe(
      puppy,
    );
    e.store.delete(puppy);
    expect(
      (await recall(e.app, { query: "airplane trip", mode: "semantic" })).results.map((h) => h.memory.id),
    ).not.toContain(puppy);
    const forced = await post(e.app, "/v1/recall", { query: "insurance", route: "vps" });
    expect(forced.status).toBe(503);
    expect(((await forced.json()) as { code: string }).code).toBe("unavailable");
    const g = await post(e.app, "/v1/graph/query", { entity: "Marta" });
    expect(g.status).toBe(503);
    expect(((await g.json()) as { detail: string }).detail).toBe(
      "graph queries run on the VPS and the VPS is unreachable",
    );
    expect((await e.app.request("/v1/consolidate", { method: "POST" })).status).toBe(503);
    expect((await post(e.app, "/v1/ask", { question: "where?" })).status).toBe(503);
  });

  test("the VPS failing (nothing listens): route auto degrades with the reason, route vps answers 503", async () => {
    const e = makeEdge({ url: `http://127.0.0.1:${freePort()}` });
    const r = await recall(e.app, { query: "where is the spare key?" });
    expect(r).toMatchObject({ routed: "local", degraded: true });
    expect(r.reason).toContain("the VPS request failed");
    const forced = await post(e.app, "/v1/recall", { query: "spare key", mode: "semantic", route: "vps" });
    expect(forced.status).toBe(503);
    expect(((await forced.json()) as { detail: string }).detail).toContain("route vps was asked");
  });

  test("never logged in: recall runs on the device, semantic and hybrid too, not degraded; what needs the VPS is 503", async () => {
    const e = makeEdge({ login: false });
    e.store.create({
      content: "The spare key is under the blue flower pot",
      kind: "episodic",
      tags: [],
      metadata: {},
    });
    for (const query of ["where is the spare key?", "spare key"]) {
      const plain = await recall(e.app, { query });
      expect(plain.routed).toBe("local");
      expect(plain.degraded).toBeUndefined();
      expect(plain.reason).toBeUndefined();
      expect(plain.results[0]?.memory.content).toContain("spare key");
    }
    const r = await recall(e.app, { query: "key", mode: "hybrid" });
    expect(r.routed).toBe("local");
    expect(r.degraded).toBeUndefined();
    expect(r.results[0]?.memory.content).toContain("spare key");
    const forced = await post(e.app, "/v1/recall", { query: "key", route: "vps" });
    expect(forced.status).toBe(503);
    const g = await post(e.app, "/v1/graph/query", { entity: "Marta" });
    expect(g.status).toBe(503);
    expect(((await g.json()) as { detail: string }).detail).toContain("not logged in");
  });

  test("re-authentication needed: auto recall of a question is degraded, with the reason", async () => {
    const e = makeEdge({ reauth: true });
    const r = await recall(e.app, { query: "where is the spare key?" });
    expect(r).toMatchObject({ routed: "local", degraded: true });
    expect(r.reason).toContain("hybrid search runs on the VPS");
  });
});

describe("graph, consolidation and ask through the edge", () => {
  test("graph: from the VPS, then from the cache; bad depth is 400 before any VPS call", async () => {
    const e = makeEdge();
    const first = GraphAnswer.parse(
      await (await post(e.app, "/v1/graph/query", { entity: "marta", depth: 1 })).json(),
    );
    expect(first.routed).toBe("vps");
    expect(first.nodes.map((n) => n.name)).toEqual(["Marta", "Joao"]);
    expect(first.memories[0]?.memory.id).toBe(ids.lunch!);
    const again = GraphAnswer.parse(
      await (await post(e.app, "/v1/graph/query", { entity: " MARTA ", depth: 1 })).json(),
    );
    expect(again.routed).toBe("cache");
    expect(again.nodes).toEqual(first.nodes);
    const bad = await post(e.app, "/v1/graph/query", { entity: "Marta", depth: 9 });
    expect(bad.status).toBe(400);
    const unknown = GraphAnswer.parse(
      await (await post(e.app, "/v1/graph/query", { entity: "Nobody" })).json(),
    );
    expect(unknown).toMatchObject({ nodes: [], edges: [], memories: [] });
  });

  test("consolidate: 202 with the job; waiting on the job returns when the VPS says it is done", async () => {
    const e = makeEdge();
    // Fill the cache: a finished consolidation clears it.
    expect((await recall(e.app, { query: "dry cleaning", mode: "semantic" })).routed).toBe("vps");
    const res = await e.app.request("/v1/consolidate", { method: "POST" });
    expect(res.status).toBe(202);
    const { job, started } = ConsolidateResponse.parse(await res.json());
    expect(started).toBe(true);
    const twice = ConsolidateResponse.parse(
      await (await e.app.request("/v1/consolidate", { method: "POST" })).json(),
    );
    expect(twice).toMatchObject({ started: false, job: { id: job.id } });
    const waiting = e.app.request(`/v1/jobs/${job.id}?wait=30`);
    await Bun.sleep(200);
    await vps.services.heavy.worker.drain();
    const done = Job.parse(((await (await waiting).json()) as { job: unknown }).job);
    expect(done.status).toBe("done");
    expect(done.result).toMatchObject({ merged_groups: 1, tombstoned: 1 });
    const after = await recall(e.app, { query: "dry cleaning", mode: "semantic" });
    expect(after.routed).toBe("vps");
    // The two copies were written in the same millisecond: either may be the survivor.
    expect(after.results.filter((h) => h.memory.id === ids.dup1 || h.memory.id === ids.dup2)).toHaveLength(1);
    expect((await e.app.request("/v1/jobs/not-a-job")).status).toBe(404);
    expect((await e.app.request(`/v1/jobs/${job.id}?wait=500`)).status).toBe(400);
  });

  test("ask: the VPS's answer streams through the edge as NDJSON", async () => {
    const e = makeEdge();
    const res = await post(e.app, "/v1/ask", { question: "Where is the spare key?", limit: 3 });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .trim()
      .split("\n")
      .map((l) => AskEvent.parse(JSON.parse(l)));
    expect(events[0]).toMatchObject({ type: "sources" });
    expect(
      events
        .filter((x) => x.type === "delta")
        .map((x) => (x.type === "delta" ? x.text : ""))
        .join(""),
    ).toContain("under the mat");
    expect(events.at(-1)).toEqual({ type: "done" });
    expect((await post(e.app, "/v1/ask", { question: "" })).status).toBe(400);
  });
});

describe("vectors through the change feed", () => {
  test("a pulled vector for the same version is stored, with no conflict and no content change", async () => {
    const e = makeEdge();
    const m = device.create("Water the tomatoes every morning");
    await vps.req("/v1/sync/push", {
      method: "POST",
      headers: session.json,
      body: JSON.stringify({ mutations: [m] }),
    });
    const pull = async (since?: string) => {
      const res = await vps.req(
        `/v1/sync/pull?limit=1000${since ? `&since=${encodeURIComponent(since)}` : ""}`,
        {
          headers: session.auth,
        },
      );
      const page = PullResponse.parse(await res.json());
      if (page.status !== "ok") throw new Error("refetch");
      e.store.applyChanges(page.changes, page.cursor, page.conflicts);
      return page;
    };
    const p1 = await pull();
    expect(e.store.get(m.id)?.embedding ?? null).toBeNull();
    await vps.services.heavy.worker.drain();
    const p2 = await pull(p1.cursor);
    expect(p2.changes.map((c) => c.id)).toContain(m.id);
    const stored = e.store.get(m.id)!;
    expect(stored.hlc).toBe(m.hlc);
    expect(stored.content).toBe(m.data.content);
    expect(stored.embedding).toHaveLength(64);
    expect(e.store.conflicts(10)).toEqual([]);
    // A local content edit drops the vector (it described the old content); a tags edit keeps it.
    const tagged = e.store.update(m.id, { tags: ["garden"] });
    expect(tagged.embedding).toHaveLength(64);
    expect(e.store.update(m.id, { content: "Water the basil" }).embedding).toBeNull();
    expect(e.store.get(m.id)?.embedding ?? null).toBeNull();
  });
});
