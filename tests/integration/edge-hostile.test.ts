/**
 * Hostile writes at the edge: refused where they are written (400 problem+json, a CLI error),
 * and, for writes the VPS cannot take anyway, a sync queue that keeps flowing: a push too large
 * for the VPS is split, a mutation too large alone is marked `failed` with its reason, and
 * everything else arrives.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSyncStatus } from "../../src/cli/sync-format.ts";
import { createEdgeApp } from "../../src/edge/http/app.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { runCli, TEST_DATABASE_URL } from "../helpers/harness.ts";
import { type InprocDevice, type InprocVps, startInprocVps } from "../helpers/inproc-vps.ts";

setDefaultTimeout(120_000);

const MiB = 1024 * 1024;

function problemOf(body: unknown) {
  return body as { code: string; detail: string; status: number };
}

describe("the local API and the CLI refuse what cannot be stored or synced", () => {
  let dir: string;
  let store: EdgeStore;
  let app: ReturnType<typeof createEdgeApp>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dionysus-hostile-"));
    store = createSqliteStore({ path: join(dir, "edge.db") });
    app = createEdgeApp({ store, apiToken: null, log: () => {} });
  });
  afterAll(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const send = async (method: string, path: string, raw: string) => {
    const res = await app.request(path, {
      method,
      headers: { "content-type": "application/json" },
      body: raw,
    });
    return { status: res.status, type: res.headers.get("content-type") ?? "", body: await res.json() };
  };

  test("NUL or a lone surrogate in tags or metadata, and deep metadata: 400 problem+json, nothing queued", async () => {
    // Raw JSON text: `\u0000` and `\ud800` escapes are valid JSON (and valid UTF-8 on the wire).
    const cases: Array<[string, string]> = [
      [String.raw`{"content":"x","tags":["a\u0000b"]}`, "tags[0] must not contain NUL characters"],
      [String.raw`{"content":"x","tags":["\ud800"]}`, "tags[0] is not valid Unicode (lone surrogate)"],
      [String.raw`{"content":"x","metadata":{"k\u0000":1}}`, "NUL"],
      [String.raw`{"content":"x","metadata":{"\udc00":1}}`, "lone surrogate"],
      [String.raw`{"content":"x","metadata":{"a":["ok","\u0000"]}}`, "metadata.a[1] must not contain NUL"],
      [`{"content":"x","metadata":${'{"a":'.repeat(20_000)}1${"}".repeat(20_000)}}`, "nested deeper than 32"],
    ];
    for (const [raw, reason] of cases) {
      const r = await send("POST", "/v1/memories", raw);
      expect(r.status).toBe(400);
      expect(r.type).toContain("application/problem+json");
      expect(problemOf(r.body)).toMatchObject({ code: "invalid_input" });
      expect(problemOf(r.body).detail).toContain(reason);
    }
    const ok = await send("POST", "/v1/memories", '{"content":"fine","tags":["😀"]}');
    expect(ok.status).toBe(201);
    const id = (ok.body as { id: string }).id;
    const patched = await send("PATCH", `/v1/memories/${id}`, String.raw`{"metadata":{"v":"\ud83d"}}`);
    expect(patched.status).toBe(400);
    expect(problemOf(patched.body).detail).toContain("lone surrogate");
    expect(store.queueCounts()).toMatchObject({ queued: 1, failed: 0 });
  });

  test("dionysus ingest of 1 MiB of control characters: one line, exit 2, nothing stored", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "dionysus-hostile-cli-"));
    try {
      const r = await runCli(["ingest", "--data-dir", dataDir], { input: "\u0001".repeat(MiB) });
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("JSON-encoded");
      const list = await runCli(["list", "--json", "--data-dir", dataDir]);
      expect(JSON.parse(list.stdout)).toEqual({ memories: [] });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!TEST_DATABASE_URL)("a push the VPS cannot take never wedges the queue", () => {
  let vps: InprocVps;
  beforeAll(async () => {
    // A VPS with a small body limit (16 KiB), so that ordinary writes are "too large" for it.
    vps = await startInprocVps({ max_push_bytes: 16 * 1024 });
  });
  afterAll(async () => {
    await vps?.stop();
  });

  async function vpsContents(userName: string): Promise<string[]> {
    const r = await vps.pg.query<{ content: string }>(
      "select m.content from memories m join users u on u.id = m.user_id where u.name = $1 order by m.seq",
      [userName],
    );
    // Sorted: the VPS worker's vectors also move a memory's seq, so feed order is not write order.
    return r.rows.map((x) => x.content.slice(0, 20)).sort();
  }

  function expectDrained(d: InprocDevice, failed: number) {
    expect(d.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed });
  }

  test("413 for a batch: it is halved; 413 for a single mutation: that one fails, the rest arrive", async () => {
    const user = await vps.newUser();
    const a = await vps.device(user.key);
    const small = ["one", "two", "three"].map((c) =>
      a.store.create({ content: c, kind: "episodic", tags: [], metadata: {} }),
    );
    const big = a.store.create({ content: "b".repeat(20_000), kind: "episodic", tags: [], metadata: {} });
    const after = ["four", "five"].map((c) =>
      a.store.create({ content: c, kind: "episodic", tags: [], metadata: {} }),
    );
    const report = await a.engine.syncNow();
    expect(report).toMatchObject({ pushed: 5, rejected: 1 });
    expectDrained(a, 1);
    const [failed] = a.store.queueItems("failed", 10);
    expect(failed).toMatchObject({ memory_id: big.id, mutation_id: 4 });
    expect(failed!.last_error).toContain("payload_too_large");
    expect(failed!.last_error).toContain("the VPS refused it as too large");
    expect(await vpsContents(user.name)).toEqual(["five", "four", "one", "three", "two"]);
    // `dionysus sync status` names it, with its reason.
    const text = formatSyncStatus({ queue: a.store.queueCounts(), ...a.engine.status() });
    expect(text).toContain(
      `failed        create ${big.id} (mutation 4): payload_too_large: the VPS refused it`,
    );
    // Later writes keep flowing.
    a.store.create({ content: "six", kind: "episodic", tags: [], metadata: {} });
    await a.engine.syncNow();
    expectDrained(a, 1);
    expect(await vpsContents(user.name)).toEqual(["five", "four", "one", "six", "three", "two"]);
    // A second device receives everything that arrived.
    const b = await vps.device(user.key);
    await b.engine.syncNow();
    for (const m of [...small, ...after]) expect(b.store.get(m.id)?.content).toBe(m.content);
    expect(b.store.get(big.id)).toBeUndefined();
  });

  test("a mutation larger than the device's push limit alone is failed locally and never sent", async () => {
    const user = await vps.newUser();
    const a = await vps.device(user.key, { engine: { maxPushBytes: 8 * 1024 } });
    a.store.create({ content: "before", kind: "episodic", tags: [], metadata: {} });
    const big = a.store.create({ content: "\u0001".repeat(5_000), kind: "episodic", tags: [], metadata: {} });
    a.store.create({ content: "after", kind: "episodic", tags: [], metadata: {} });
    const report = await a.engine.syncNow();
    expect(report).toMatchObject({ pushed: 2, rejected: 1 });
    expectDrained(a, 1);
    const [failed] = a.store.queueItems("failed", 10);
    expect(failed).toMatchObject({ memory_id: big.id });
    expect(failed!.last_error).toMatch(/too large to push: \d+ bytes JSON-encoded; the limit is 8192/);
    expect(await vpsContents(user.name)).toEqual(["after", "before"]);
  });
});
