/**
 * Scopes, sources and filters on the VPS: the protocol-2 fields stored and pulled as pushed, the
 * defaults for an edge of protocol 1, and the semantics of every filter key on `POST /v1/search`
 * (the same table as the edge store's). Runs inside the VPS database contract (PostgreSQL and
 * PGlite), on its database.
 */
import { expect, test } from "bun:test";
import { createBuiltinEmbedder } from "../../src/core/embedding/builtin-embedder.ts";
import { parseFilter } from "../../src/core/filter.ts";
import { PullResponse } from "../../src/core/protocol/sync.ts";
import { createAuthService, type Principal } from "../../src/vps/auth/service.ts";
import type { VpsDatabase } from "../../src/vps/db/database.ts";
import { createSearchService } from "../../src/vps/search/search-service.ts";
import { createVectorIndex } from "../../src/vps/search/vector-index.ts";
import { createSyncService } from "../../src/vps/sync/service.ts";
import { TestDevice } from "../helpers/memories.ts";
import { FILTER_TABLE, FILTER_TABLE_NOW, FILTER_TABLE_ROWS } from "./edge-store-filters.contract.ts";

export function vpsFilterTests(db: () => VpsDatabase): void {
  const now = () => FILTER_TABLE_NOW;
  const services = () => ({
    auth: createAuthService(db().db, { access_token_ttl_s: 3600, refresh_token_ttl_s: 86400, now: Date.now }),
    sync: createSyncService(db().db, { max_content_bytes: 10_000, max_clock_skew_ms: 60_000, now: Date.now }),
  });
  const search = () => {
    const embedder = createBuiltinEmbedder();
    return createSearchService({
      db: db().db,
      embedder,
      vectors: createVectorIndex(db().db, embedder.id),
      now,
    });
  };

  async function signedIn(deviceId = "dev-f") {
    const { auth } = services();
    const name = `f${crypto.randomUUID().slice(0, 8)}`;
    await auth.createUser(name, "correct horse");
    const key = await auth.createApiKey(name);
    const tokens = await auth.tokenForApiKey(key.key, { device_id: deviceId, device_name: "Laptop" });
    const principal = (await auth.authenticate(tokens.access_token)) as Principal;
    return { principal, device: new TestDevice(deviceId) };
  }

  test("scope, source and occurred_at are stored and pulled as pushed; protocol 1 gets the defaults", async () => {
    const { principal, device } = await signedIn();
    const { sync } = services();
    const v2 = device.create("written by protocol 2", {
      scope: "project/dionysus",
      source: "mcp:claude-desktop",
      occurred_at: "2026-01-01T09:00:00.000Z",
    });
    const v1 = device.create("written by protocol 1");
    const r = await sync.push(principal, [v2, v1]);
    expect(r.response.results.map((x) => x.status)).toEqual(["applied", "applied"]);
    const pulled = PullResponse.parse(await sync.pull(principal.user_id, { limit: 10 }));
    if (pulled.status !== "ok") throw new Error("expected ok");
    expect(pulled.changes.map((c) => [c.content, c.scope, c.source, c.occurred_at])).toEqual([
      ["written by protocol 2", "project/dionysus", "mcp:claude-desktop", "2026-01-01T09:00:00.000Z"],
      ["written by protocol 1", null, "unknown", null],
    ]);
    // A resend of the protocol-1 write (e.g. after the VPS was upgraded) is the same mutation.
    expect((await sync.push(principal, [v1])).response.results[0]!.status).toBe("duplicate");
    // A bad scope in a push is refused with its field, and nothing else of the batch is lost.
    const bad = device.create("bad scope", { scope: "Not A Scope!" });
    const rb = await sync.push(principal, [bad]);
    expect(rb.response.results[0]).toMatchObject({ status: "rejected", retryable: false });
    expect(rb.response.results[0]!.reason).toContain("scope");
  });

  test("search: every filter key, as on the edge, inside the query", async () => {
    const { principal, device } = await signedIn();
    const { sync } = services();
    const idOf = new Map<string, string>();
    const batch = Object.entries(FILTER_TABLE_ROWS).map(([n, r]) => {
      const m = device.create(`a note about ${n}`, {
        scope: r.scope,
        tags: [...r.tags],
        kind: r.kind,
        source: r.source,
        metadata: { ...r.metadata },
        created_at: r.created_at,
      });
      idOf.set(m.id, n);
      return m;
    });
    const pushed = await sync.push(principal, batch);
    expect(pushed.response.results.every((x) => x.status === "applied")).toBe(true);
    const s = search();
    for (const [label, raw, want] of FILTER_TABLE) {
      for (const mode of ["keyword", "hybrid"] as const) {
        const answer = await s.search(principal.user_id, {
          query: "note",
          mode,
          limit: 100,
          filter: parseFilter(raw),
        });
        const got = answer.results.map((h) => idOf.get(h.memory.id)).sort();
        expect({ label, mode, got }).toEqual({ label, mode, got: [...want].sort() });
      }
    }
  });

  test("search: a filtered search still returns a full page (20 of 1,000 match)", async () => {
    const { principal, device } = await signedIn();
    const { sync } = services();
    const batch = [];
    for (let i = 0; i < 1000; i++)
      batch.push(device.create(`a note number ${i}`, { scope: i % 50 === 0 ? "rare" : "common" }));
    await sync.push(principal, batch);
    const answer = await search().search(principal.user_id, {
      query: "note",
      mode: "keyword",
      limit: 10,
      filter: { scope: "rare" },
    });
    expect(answer.results).toHaveLength(10);
    for (const h of answer.results) expect(h.memory.scope).toBe("rare");
  });

  test("search: a time in the query boosts or filters by occurred_at, else created_at; an empty window changes nothing", async () => {
    const { principal, device } = await signedIn();
    const { sync } = services();
    const strong = device.create("Nate likes to make coconut ice cream; Nate will make it again", {
      occurred_at: "2023-03-01T12:00:00.000Z",
    });
    const dated = device.create("Nate: I make a coconut dish for dinner", {
      occurred_at: "2022-11-09T18:30:00+01:00",
    });
    const written = device.create("Nate cooked soup", { created_at: "2022-11-09T08:00:00.000Z" });
    expect(
      (await sync.push(principal, [strong, dated, written])).response.results.every(
        (x) => x.status === "applied",
      ),
    ).toBe(true);
    const s = search();
    const ask = (query: string, mode: "keyword" | "hybrid", time?: "boost" | "filter" | "off") =>
      s.search(principal.user_id, { query, mode, limit: 10, ...(time ? { time } : {}) });
    const q = "What did Nate make on 9 November, 2022?";
    for (const mode of ["keyword", "hybrid"] as const) {
      const boosted = await ask(q, mode);
      expect({ mode, first: boosted.results[0]?.memory.id }).toEqual({ mode, first: dated.id });
      expect(boosted.results).toHaveLength(3);
      expect(boosted.time).toEqual({
        phrase: "on 9 November, 2022",
        since: "2022-11-09T00:00:00.000Z",
        until: "2022-11-10T00:00:00.000Z",
        use: "boost",
      });
      const off = await ask(q, mode, "off");
      expect({ mode, first: off.results[0]?.memory.id }).toEqual({ mode, first: strong.id });
      expect(off.time).toBeUndefined();
      const filtered = await ask(q, mode, "filter");
      expect({ mode, ids: filtered.results.map((h) => h.memory.id).sort() }).toEqual({
        mode,
        ids: [dated.id, written.id].sort(),
      });
      // No memory of 2019: the ranking is the one without a time.
      const none = "What did Nate make on 9 November, 2019?";
      expect((await ask(none, mode)).results).toEqual((await ask(none, mode, "off")).results);
    }
    // The phrase alone: the window's newest first.
    const alone = await ask("9 November 2022", "keyword", "filter");
    expect(alone.results.map((h) => h.memory.id)).toEqual([dated.id, written.id]);
  }, 30_000);
}
