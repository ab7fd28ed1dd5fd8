/**
 * Heavy queries on the VPS, in-process (app.request) on a real PostgreSQL (a fresh database,
 * dropped afterwards; PGlite when TEST_DATABASE_URL is unset): search in three modes, graph
 * queries, consolidation jobs, embeddings in the change feed, bad input, user isolation.
 * The background worker is driven by hand (`drain()`), so every test is deterministic.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "kysely";
import {
  ConsolidateResponse,
  GraphQueryResponse,
  Job,
  SearchResponse,
} from "../../src/core/protocol/heavy.ts";
import { type Change, PullResponse } from "../../src/core/protocol/sync.ts";
import { TestDevice } from "../helpers/memories.ts";
import {
  makeTestApp,
  openTestBackend,
  readSse,
  signIn,
  type TestApp,
  type TestBackend,
} from "../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend);
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
});

type Session = Awaited<ReturnType<typeof signIn>>;

async function push(s: Session, mutations: unknown[]) {
  const res = await t.req("/v1/sync/push", {
    method: "POST",
    headers: s.json,
    body: JSON.stringify({ mutations }),
  });
  expect(res.status).toBe(200);
}

async function post(s: Session, path: string, body: unknown) {
  const res = await t.req(path, { method: "POST", headers: s.json, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function search(s: Session, query: string, mode: string, limit = 10) {
  const r = await post(s, "/v1/search", { query, mode, limit });
  expect(r.status).toBe(200);
  return SearchResponse.parse(r.body);
}

async function pullAll(s: Session): Promise<Change[]> {
  const out: Change[] = [];
  let since = "";
  for (;;) {
    const res = await t.req(`/v1/sync/pull?limit=1000${since ? `&since=${encodeURIComponent(since)}` : ""}`, {
      headers: s.auth,
    });
    const page = PullResponse.parse(await res.json());
    if (page.status !== "ok") throw new Error("refetch");
    out.push(...page.changes);
    since = page.cursor;
    if (page.up_to_date) return out;
  }
}

const NOTES = [
  "Met the design team about the new logo for the garden project",
  "Bought tomatoes and basil at the market on Saturday",
  "Had coffee with Ana Lima in Lisbon; she works at Google now",
  "The spare key is under the blue flower pot by the back door",
  "Dentist appointment moved to Thursday at 9",
];

describe("search", () => {
  let s: Session;
  const dev = new TestDevice("dev-search");
  const ids: string[] = [];

  beforeAll(async () => {
    s = await signIn(t, "dev-search");
    const muts = NOTES.map((n) => dev.create(n));
    ids.push(...muts.map((m) => m.id));
    await push(s, muts);
    await t.services.heavy.worker.drain();
  });

  test("keyword: full-text search, best match first; stemming; no match is an empty list", async () => {
    const r = await search(s, "logo design", "keyword");
    expect(r.mode).toBe("keyword");
    expect(r.results[0]?.memory.id).toBe(ids[0]!);
    expect(r.results[0]?.memory.embedding).toBeUndefined();
    expect(r.vector_search).toBeUndefined();
    // "tomato" finds "tomatoes" (English stemming), and any one word is enough.
    expect((await search(s, "tomato zucchini", "keyword")).results.map((h) => h.memory.id)).toEqual([
      ids[1]!,
    ]);
    expect((await search(s, "xylophone", "keyword")).results).toEqual([]);
    // Search syntax is plain text: quotes, operators and colons never reach tsquery as syntax.
    for (const q of ["'logo' & !design", "logo:*", "a | b <-> c", "(((", "!!!"]) {
      const weird = await post(s, "/v1/search", { query: q, mode: "keyword" });
      expect(weird.status).toBe(200);
    }
  });

  test("keyword and hybrid: a memory naming the person asked about ranks above one that only repeats the other words", async () => {
    const s2 = await signIn(t, "dev-names");
    const d2 = new TestDevice("dev-names");
    const ben = d2.create("Ben: I went hiking in the mountains");
    const ana = d2.create("Ana: I went hiking");
    const notes = Array.from({ length: 20 }, (_, i) =>
      d2.create(`Ana: note ${i} about the weather and the garden`),
    );
    await push(s2, [ben, ana, ...notes]);
    await t.services.heavy.worker.drain();
    const q = "Where did Ana go hiking in the mountains?";
    const byKeyword = await post(s2, "/v1/search", { query: q, mode: "keyword", limit: 2 });
    expect(SearchResponse.parse(byKeyword.body).results.map((h) => h.memory.id)).toEqual([ana.id, ben.id]);
    const byHybrid = await post(s2, "/v1/search", { query: q, mode: "hybrid", limit: 5 });
    expect(SearchResponse.parse(byHybrid.body).results[0]?.memory.id).toBe(ana.id);
    // Without a name (lower case), plain BM25: the memory with more of the words wins.
    const plain = await post(s2, "/v1/search", { query: q.toLowerCase(), mode: "keyword", limit: 1 });
    expect(SearchResponse.parse(plain.body).results[0]?.memory.id).toBe(ben.id);
  });

  test("semantic: by vector similarity over the user's embeddings (exact scan)", async () => {
    const r = await search(s, "meetings of the design team about logos", "semantic", 3);
    expect(r.vector_search).toBe("exact");
    expect(r.results[0]?.memory.id).toBe(ids[0]!);
    expect(r.results.length).toBeLessThanOrEqual(3);
    for (let i = 1; i < r.results.length; i++)
      expect(r.results[i - 1]!.score).toBeGreaterThanOrEqual(r.results[i]!.score);
  });

  test("semantic with a filter: the exact scan considers only the filter's memories", async () => {
    const q = { query: "meetings of the design team about logos", mode: "semantic", limit: 3 };
    const all = SearchResponse.parse((await post(s, "/v1/search", q)).body);
    const same = SearchResponse.parse(
      (await post(s, "/v1/search", { ...q, filter: { source: "unknown" } })).body,
    );
    expect(same.results.map((h) => h.memory.id)).toEqual(all.results.map((h) => h.memory.id));
    const narrowed = SearchResponse.parse(
      (await post(s, "/v1/search", { ...q, limit: 10, filter: { tags: ["no-such-tag"] } })).body,
    );
    expect(narrowed.results).toEqual([]);
    const bad = await post(s, "/v1/search", { ...q, filter: { scope: "A B" } });
    expect(bad.status).toBe(400);
    expect(String(bad.body.detail)).toContain("filter.scope");
  });

  test("hybrid: both lists fused; a memory found by either appears", async () => {
    const r = await search(s, "where is the spare key", "hybrid", 5);
    expect(r.mode).toBe("hybrid");
    expect(r.results[0]?.memory.id).toBe(ids[3]!);
    expect(r.results.every((h) => h.snippet.length > 0)).toBe(true);
  });

  test("new, changed and deleted memories: the vector cache follows the feed", async () => {
    expect((await search(s, "dentist appointment", "semantic", 1)).results[0]?.memory.id).toBe(ids[4]!);
    const upd = dev.update(ids[4]!, "Piano lesson on Friday afternoon");
    const fresh = dev.create("Dentist appointment booked for next Tuesday");
    await push(s, [upd, fresh]);
    await t.services.heavy.worker.drain();
    const after = await search(s, "dentist appointment", "semantic", 5);
    expect(after.results[0]?.memory.id).toBe(fresh.id);
    expect(after.results.map((h) => h.memory.content)).not.toContain(NOTES[4]!);
    await push(s, [dev.delete(fresh.id)]);
    await t.services.heavy.worker.drain();
    const gone = await search(s, "dentist appointment", "hybrid", 10);
    expect(gone.results.map((h) => h.memory.id)).not.toContain(fresh.id);
    const rows = await sql<{
      n: number;
    }>`select count(*)::int as n from embeddings where memory_id = ${fresh.id}`.execute(backend.database.db);
    expect(rows.rows[0]?.n).toBe(0);
  });

  test("bad input: 400 invalid_input for an empty query, an unknown mode, a limit out of range, bad JSON", async () => {
    for (const body of [
      { query: "" },
      { query: "   " },
      { query: "x", mode: "psychic" },
      { query: "x", limit: 0 },
      { query: "x", limit: 101 },
      { query: "x".repeat(4097) },
      {},
    ]) {
      const r = await post(s, "/v1/search", body);
      expect(r.status).toBe(400);
      expect(r.body.code).toBe("invalid_input");
    }
    const res = await t.req("/v1/search", { method: "POST", headers: s.json, body: "{nope" });
    expect(res.status).toBe(400);
    expect((await t.req("/v1/search", { method: "POST", body: "{}" })).status).toBe(401);
  });
});

describe("embeddings in the change feed", () => {
  test("a memory's vector arrives as a new change with the same hlc; a tags-only edit keeps it", async () => {
    const s = await signIn(t, "dev-feed");
    const dev = new TestDevice("dev-feed");
    const m = dev.create("Call the plumber about the kitchen sink");
    await push(s, [m]);
    const before = (await pullAll(s)).find((c) => c.id === m.id)!;
    expect(before.embedding ?? null).toBeNull();
    expect(await t.services.heavy.worker.drain()).toBeGreaterThan(0);
    // Done embed jobs are removed (in one statement per batch), not left to be claimed again.
    const left = await sql<{ n: string }>`
      select count(*) as n from jobs where memory_id = ${m.id} and kind = 'embed'`.execute(
      t.services.database.db,
    );
    expect(Number(left.rows[0]!.n)).toBe(0);
    const after = (await pullAll(s)).find((c) => c.id === m.id)!;
    expect(after.hlc).toBe(m.hlc);
    expect(after.seq).toBeGreaterThan(before.seq);
    expect(after.embedding).toHaveLength(t.services.heavy.embedder.dimensions);
    const norm = Math.sqrt(after.embedding!.reduce((a, x) => a + x * x, 0));
    expect(norm).toBeCloseTo(1, 3);
    // The vector write is no conflict.
    const conflicts = await t.req(`/v1/conflicts?memory_id=${m.id}`, { headers: s.auth });
    expect(((await conflicts.json()) as { conflicts: unknown[] }).conflicts).toEqual([]);
    // Tags only: the content is the same, the vector still current, no re-embedding.
    const tagged = { ...dev.update(m.id, m.data.content), data: { ...m.data, tags: ["home"] } };
    await push(s, [tagged]);
    const served = (await pullAll(s)).find((c) => c.id === m.id)!;
    expect(served.hlc).toBe(tagged.hlc);
    expect(served.embedding).toEqual(after.embedding!);
    const seqBefore = served.seq;
    await t.services.heavy.worker.drain();
    expect((await pullAll(s)).find((c) => c.id === m.id)!.seq).toBe(seqBefore);
  });
});

describe("graph queries", () => {
  let s: Session;
  beforeAll(async () => {
    s = await signIn(t, "dev-graph");
    const dev = new TestDevice("dev-graph");
    await push(s, [
      dev.create("Had coffee with Ana Lima in Lisbon yesterday."),
      dev.create("Ana Lima and Bruno Costa planned the garden project.", { scope: "work/garden" }),
      dev.create("Bruno Costa moved to Porto."),
    ]);
    await t.services.heavy.worker.drain();
  });

  test("nodes, edges and the memories behind them; depth widens the neighbourhood", async () => {
    const r1 = await post(s, "/v1/graph/query", { entity: "ana lima", depth: 1 });
    expect(r1.status).toBe(200);
    const g1 = GraphQueryResponse.parse(r1.body);
    expect(g1.nodes[0]).toMatchObject({ name: "Ana Lima", type: "person", depth: 0, mentions: 2 });
    const names1 = g1.nodes.map((n) => n.name);
    expect(names1).toContain("Lisbon");
    expect(names1).toContain("Bruno Costa");
    expect(names1).not.toContain("Porto");
    expect(g1.edges.length).toBeGreaterThan(0);
    expect(g1.memories.map((m) => m.memory.content).join(" ")).toContain("coffee");
    const g2 = GraphQueryResponse.parse(
      (await post(s, "/v1/graph/query", { entity: "ANA LIMA's", depth: 2 })).body,
    );
    expect(g2.nodes.map((n) => n.name)).toContain("Porto");
  });

  test("a filter narrows the memories answered; the nodes stay the graph's", async () => {
    const r = await post(s, "/v1/graph/query", { entity: "ana lima", depth: 1, filter: { scope: "work/*" } });
    expect(r.status).toBe(200);
    const g = GraphQueryResponse.parse(r.body);
    expect(g.memories.map((m) => m.memory.content)).toEqual([
      "Ana Lima and Bruno Costa planned the garden project.",
    ]);
    expect(g.nodes.map((n) => n.name)).toContain("Lisbon");
    const bad = await post(s, "/v1/graph/query", { entity: "ana lima", filter: { colour: "red" } });
    expect(bad.status).toBe(400);
    expect(String(bad.body.detail)).toContain("colour");
  });

  test("an unknown entity is an empty answer, not an error; bad depth or empty entity is 400", async () => {
    const r = await post(s, "/v1/graph/query", { entity: "Nobody Anywhere", depth: 2 });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ nodes: [], edges: [], memories: [] });
    for (const body of [
      { entity: "Ana", depth: 0 },
      { entity: "Ana", depth: 4 },
      { entity: "" },
      { entity: "  " },
    ]) {
      const bad = await post(s, "/v1/graph/query", body);
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe("invalid_input");
    }
  });

  test("a deleted memory leaves the graph", async () => {
    const dev = new TestDevice("dev-graph2");
    const s2 = await signIn(t, "dev-graph2", s.user);
    const m = dev.create("Zelda Quinn visited Reykjavik.");
    await push(s2, [m]);
    await t.services.heavy.worker.drain();
    expect(
      GraphQueryResponse.parse((await post(s, "/v1/graph/query", { entity: "Zelda Quinn" })).body).nodes,
    ).not.toEqual([]);
    await push(s2, [dev.delete(m.id)]);
    await t.services.heavy.worker.drain();
    expect((await post(s, "/v1/graph/query", { entity: "Zelda Quinn" })).body).toEqual({
      nodes: [],
      edges: [],
      memories: [],
    });
  });
});

describe("consolidation", () => {
  test("duplicates are merged within a scope, never across scopes", async () => {
    const s = await signIn(t, "dev-cons-scope");
    const dev = new TestDevice("dev-cons-scope");
    const text = "Booked the dentist for Thursday morning";
    const work1 = dev.create(text, { scope: "work" });
    const work2 = dev.create(`${text}!`, { scope: "work" });
    const home = dev.create(text, { scope: "home" });
    const none = dev.create(text);
    await push(s, [work1, work2, home, none]);
    const started = ConsolidateResponse.parse((await post(s, "/v1/consolidate", {})).body);
    await t.services.heavy.worker.drain();
    const got = await t.req(`/v1/jobs/${started.job.id}`, { headers: s.auth });
    const job = Job.parse(((await got.json()) as { job: unknown }).job);
    expect(job.result).toMatchObject({ merged_groups: 1, tombstoned: 1 });
    const live = new Map((await pullAll(s)).filter((c) => !c.deleted).map((c) => [c.id, c]));
    expect(live.has(home.id)).toBe(true);
    expect(live.has(none.id)).toBe(true);
    expect([live.has(work1.id), live.has(work2.id)].filter(Boolean)).toHaveLength(1);
  });

  test("one job at a time; merges near-duplicates into the oldest, refreshes the graph, writes a summary", async () => {
    const s = await signIn(t, "dev-cons");
    const dev = new TestDevice("dev-cons");
    // Distinct creation times: the oldest of a group survives.
    const at = (m: ReturnType<TestDevice["create"]>, minutes: number) => {
      const t = new Date(Date.now() - (60 - minutes) * 60_000).toISOString();
      return { ...m, data: { ...m.data, created_at: t, updated_at: t } };
    };
    const a = at(dev.create("Had coffee with Ana in Lisbon", { tags: ["friends"] }), 1);
    const b = at(dev.create("had coffee with Ana in Lisbon!", { tags: ["coffee"] }), 2);
    const c = at(dev.create("Had coffee with Ana in Lisbon today"), 3);
    const other = at(dev.create("Had coffee with Ana in Porto"), 4);
    await push(s, [a, b, c, other]);
    await t.services.heavy.worker.drain();

    const events = await t.req("/v1/events", { headers: s.auth });
    const first = ConsolidateResponse.parse((await post(s, "/v1/consolidate", {})).body);
    const second = await post(s, "/v1/consolidate", {});
    expect(second.status).toBe(202);
    const again = ConsolidateResponse.parse(second.body);
    expect(first.started).toBe(true);
    expect(again.started).toBe(false);
    expect(again.job.id).toBe(first.job.id);
    expect(first.job.status).toBe("queued");

    await t.services.heavy.worker.drain();
    const got = await t.req(`/v1/jobs/${first.job.id}`, { headers: s.auth });
    expect(got.status).toBe(200);
    const job = Job.parse(((await got.json()) as { job: unknown }).job);
    expect(job.status).toBe("done");
    expect(job.finished_at).not.toBeNull();
    expect(job.result).toMatchObject({ merged_groups: 1, tombstoned: 2 });
    expect(typeof job.result?.summary_memory_id).toBe("string");
    expect(job.result?.graph_refreshed as number).toBeGreaterThanOrEqual(2);

    const sse = await readSse(
      events,
      10,
      3000,
      (e) => e.event === "job" && e.data?.includes('"done"') === true,
    );
    const jobEvents = sse.events
      .filter((e) => e.event === "job")
      .map((e) => JSON.parse(e.data!) as { id: string; status: string });
    expect(jobEvents.some((e) => e.id === first.job.id && e.status === "done")).toBe(true);

    const feed = await pullAll(s);
    const byId = new Map(feed.map((ch) => [ch.id, ch]));
    const survivor = byId.get(a.id)!;
    expect(survivor.deleted).toBe(false);
    expect(survivor.content).toBe(a.data.content);
    expect(survivor.tags.sort()).toEqual(["coffee", "friends"]);
    expect((survivor.metadata.merged_from as string[]).sort()).toEqual([b.id, c.id].sort());
    expect(survivor.base_hlc).toBe(a.hlc);
    for (const d of [b, c]) {
      expect(byId.get(d.id)).toMatchObject({ deleted: true, content: "", metadata: { merged_into: a.id } });
      expect(byId.get(d.id)!.origin_device).toBe("vps");
    }
    expect(byId.get(other.id)!.deleted).toBe(false);
    const summary = byId.get(job.result!.summary_memory_id as string)!;
    expect(summary).toMatchObject({ kind: "summary", deleted: false });
    expect(summary.content.length).toBeGreaterThan(0);
    expect(summary.metadata).toMatchObject({ generated_by: "consolidation", summarizer: "extractive" });
    const history = await sql<{ merged_id: string; merged: { content: string } }>`
      select merged_id, merged from memory_merges where survivor_id = ${a.id} order by merged_id`.execute(
      backend.database.db,
    );
    expect(history.rows.map((r) => r.merged.content).sort()).toEqual([b.data.content, c.data.content].sort());
    // No conflict was logged for the merge.
    const conflicts = (await (await t.req("/v1/conflicts", { headers: s.auth })).json()) as {
      conflicts: unknown[];
    };
    expect(conflicts.conflicts).toEqual([]);

    // A new consolidation can start once the previous one finished; nothing new: no summary.
    const next = ConsolidateResponse.parse((await post(s, "/v1/consolidate", {})).body);
    expect(next.started).toBe(true);
    expect(next.job.id).not.toBe(first.job.id);
    await t.services.heavy.worker.drain();
    const done = Job.parse(
      ((await (await t.req(`/v1/jobs/${next.job.id}`, { headers: s.auth })).json()) as { job: unknown }).job,
    );
    expect(done.result).toMatchObject({ merged_groups: 0, tombstoned: 0, summary_memory_id: null });
  });

  test("unknown or malformed job ids are 404", async () => {
    const s = await signIn(t, "dev-cons2");
    for (const id of ["0193a0b0-0000-7000-8000-000000000000", "nope"]) {
      const r = await t.req(`/v1/jobs/${id}`, { headers: s.auth });
      expect(r.status).toBe(404);
    }
  });
});

describe("user isolation", () => {
  test("user B never sees A's memories in search, graph, jobs or ask", async () => {
    const a = await signIn(t, "iso-a");
    const b = await signIn(t, "iso-b");
    const dev = new TestDevice("iso-a");
    await push(a, [dev.create("Secret meeting with Olivia Newton in Madrid about the merger")]);
    await t.services.heavy.worker.drain();
    expect((await search(a, "secret meeting merger", "hybrid")).results).toHaveLength(1);
    for (const mode of ["keyword", "semantic", "hybrid"])
      expect((await search(b, "secret meeting merger Madrid", mode)).results).toEqual([]);
    expect((await post(a, "/v1/graph/query", { entity: "Olivia Newton" })).body.nodes).not.toEqual([]);
    expect((await post(b, "/v1/graph/query", { entity: "Olivia Newton" })).body).toEqual({
      nodes: [],
      edges: [],
      memories: [],
    });
    const job = ConsolidateResponse.parse((await post(a, "/v1/consolidate", {})).body).job;
    expect((await t.req(`/v1/jobs/${job.id}`, { headers: b.auth })).status).toBe(404);
    const bJob = ConsolidateResponse.parse((await post(b, "/v1/consolidate", {})).body);
    expect(bJob.started).toBe(true);
    expect(bJob.job.id).not.toBe(job.id);
    await t.services.heavy.worker.drain();
  });
});

describe("keyword search is scoped before it is ranked", () => {
  test("A gets its full limit of hits although B has many better matches", async () => {
    const a = await signIn(t, "kw-a");
    const b = await signIn(t, "kw-b");
    const aDev = new TestDevice("kw-a");
    const bDev = new TestDevice("kw-b");
    // B's memories match the word better (short, repeated) than every one of A's.
    await push(
      b,
      Array.from({ length: 20 }, (_, i) => bDev.create(`saffron saffron saffron ${i}`)),
    );
    const mine = Array.from({ length: 5 }, (_, i) =>
      aDev.create(`On trip ${i} to the old market in town we bought a little saffron for the paella`),
    );
    await push(a, mine);
    const r = await search(a, "saffron", "keyword", 3);
    expect(r.results).toHaveLength(3);
    const aIds = new Set(mine.map((m) => m.id));
    for (const h of r.results) expect(aIds.has(h.memory.id)).toBe(true);
    expect((await search(b, "saffron", "keyword", 3)).results).toHaveLength(3);
  });
});

describe("ask without an LLM", () => {
  test("503 unavailable with a message that says how to configure one", async () => {
    const s = await signIn(t, "dev-ask");
    const r = await post(s, "/v1/ask", { question: "where is the key?" });
    expect(r.status).toBe(503);
    expect(r.body.code).toBe("unavailable");
    expect(String(r.body.detail)).toContain("ollama_url");
    const empty = await post(s, "/v1/ask", { question: " " });
    expect(empty.status).toBe(400);
  });
});
