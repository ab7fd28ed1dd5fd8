/**
 * The VPS configured with Ollama, against a fake Ollama (no Ollama can run here; see
 * tests/helpers/fake-ollama.ts): embeddings through `/api/embed`, entity extraction, summaries
 * and `POST /v1/ask` through `/api/chat`, and what happens when Ollama fails.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "kysely";
import { AskEvent, ConsolidateResponse, Job, SearchResponse } from "../../src/core/protocol/heavy.ts";
import { type FakeOllama, startFakeOllama } from "../helpers/fake-ollama.ts";
import { TestDevice } from "../helpers/memories.ts";
import { makeTestApp, openTestBackend, signIn, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;
let ollama: FakeOllama;
let s: Awaited<ReturnType<typeof signIn>>;
const dev = new TestDevice("dev-ollama");

beforeAll(async () => {
  ollama = startFakeOllama();
  backend = await openTestBackend();
  t = await makeTestApp(backend, { ollama_url: ollama.url, ollama_model: "nomic-embed-text" });
  s = await signIn(t, "dev-ollama");
  const res = await t.req("/v1/sync/push", {
    method: "POST",
    headers: s.json,
    body: JSON.stringify({
      mutations: [
        dev.create("The spare key is under the blue flower pot by the back door"),
        dev.create("lunch with Marta and Joao at the harbour"),
        dev.create("Renewed the car insurance until March"),
      ],
    }),
  });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
  ollama?.stop();
});

const post = (path: string, body: unknown) =>
  t.req(path, { method: "POST", headers: s.json, body: JSON.stringify(body) });

describe("VPS with a fake Ollama", () => {
  test("embeddings come from fake Ollama's /api/embed; entities from its /api/chat (JSON)", async () => {
    await t.services.heavy.worker.drain();
    expect(t.services.heavy.embedder.id).toBe("ollama/nomic-embed-text");
    const embeds = ollama.requests.filter((r) => r.path === "/api/embed");
    expect(embeds.length).toBeGreaterThan(0);
    expect(embeds[0]!.body.model).toBe("nomic-embed-text");
    const stored = await sql<{ model: string; dims: number }>`
      select distinct model, dims from embeddings`.execute(backend.database.db);
    expect(stored.rows).toEqual([{ model: "ollama/nomic-embed-text", dims: 64 }]);
    const extraction = ollama.requests.filter((r) => r.path === "/api/chat" && r.body.format === "json");
    expect(extraction.length).toBe(3);
    const graph = await post("/v1/graph/query", { entity: "Marta", depth: 1 });
    const body = (await graph.json()) as { nodes: { name: string }[]; edges: { type: string }[] };
    expect(body.nodes.map((n) => n.name)).toEqual(["Marta", "Joao"]);
    expect(body.edges[0]?.type).toBe("knows");
    const r = SearchResponse.parse(
      await (await post("/v1/search", { query: "spare key", mode: "semantic" })).json(),
    );
    expect(r.results[0]?.memory.content).toContain("spare key");
  });

  test("ask streams NDJSON: sources, answer deltas from fake Ollama's /api/chat, done", async () => {
    const res = await post("/v1/ask", { question: "Where is the spare key?", limit: 2 });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/x-ndjson");
    const events = (await res.text())
      .trim()
      .split("\n")
      .map((l) => AskEvent.parse(JSON.parse(l)));
    expect(events[0]?.type).toBe("sources");
    const sources = events[0]!.type === "sources" ? events[0]!.memories : [];
    expect(sources.length).toBe(2);
    const text = events.flatMap((e) => (e.type === "delta" ? [e.text] : [])).join("");
    expect(text).toBe("From your notes (2 memories): the key is under the mat.");
    expect(events.at(-1)).toEqual({ type: "done" });
    const chat = ollama.requests.filter((r) => r.path === "/api/chat" && r.body.format === undefined).at(-1)!;
    expect(chat.body.stream).toBe(true);
    expect(JSON.stringify(chat.body.messages)).toContain("spare key");
  });

  test("ask: another user's question is answered from their memories only", async () => {
    const other = await signIn(t, "dev-other");
    const res = await t.req("/v1/ask", {
      method: "POST",
      headers: other.json,
      body: JSON.stringify({ question: "Where is the spare key?" }),
    });
    expect(res.status).toBe(200);
    const events = (await res.text())
      .trim()
      .split("\n")
      .map((l) => AskEvent.parse(JSON.parse(l)));
    expect(events[0]).toEqual({ type: "sources", memories: [] });
    const prompt = JSON.stringify(
      ollama.requests.filter((r) => r.path === "/api/chat").at(-1)!.body.messages,
    );
    expect(prompt).not.toContain("flower pot");
    expect(prompt).toContain("no memories matched");
  });

  test("consolidation writes its summary with the LLM", async () => {
    const started = ConsolidateResponse.parse(await (await post("/v1/consolidate", {})).json());
    await t.services.heavy.worker.drain();
    const job = Job.parse(
      ((await (await t.req(`/v1/jobs/${started.job.id}`, { headers: s.auth })).json()) as { job: unknown })
        .job,
    );
    expect(job.status).toBe("done");
    const summary = await sql<{ content: string; metadata: { summarizer: string } }>`
      select content, metadata from memories where id = ${job.result!.summary_memory_id as string}`.execute(
      backend.database.db,
    );
    expect(summary.rows[0]?.metadata.summarizer).toBe("ollama/llama3.2");
    expect(summary.rows[0]?.content).toContain("key is under the mat");
  });

  test("fake Ollama failing: search and ask answer 503 unavailable; embed jobs are retried later", async () => {
    ollama.failWith = 500;
    try {
      const r = await post("/v1/search", { query: "insurance", mode: "hybrid" });
      expect(r.status).toBe(503);
      expect(((await r.json()) as { detail: string }).detail).toContain("Ollama");
      const a = await post("/v1/ask", { question: "when does the insurance end?" });
      expect(a.status).toBe(503);
      // Keyword search needs no model.
      expect((await post("/v1/search", { query: "insurance", mode: "keyword" })).status).toBe(200);
      const m = dev.create("Book the ferry to the islands");
      await t.req("/v1/sync/push", {
        method: "POST",
        headers: s.json,
        body: JSON.stringify({ mutations: [m] }),
      });
      await t.services.heavy.worker.drain();
      const queued = await sql<{ status: string; attempts: number; error: string }>`
        select status, attempts, error from jobs where memory_id = ${m.id} and kind = 'embed'`.execute(
        backend.database.db,
      );
      expect(queued.rows[0]).toMatchObject({ status: "queued", attempts: 1 });
      expect(queued.rows[0]?.error).toContain("Ollama");
    } finally {
      ollama.failWith = undefined;
    }
  });
});
