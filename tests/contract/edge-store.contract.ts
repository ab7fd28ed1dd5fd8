/**
 * The EdgeStore contract: every adapter of `src/edge/store/types.ts` must pass it. Call
 * `edgeStoreContract(name, open)` from a `*.test.ts` file with a factory that opens (or creates)
 * a store at a file path; the suite makes and removes its own temporary directories.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DionysusError } from "../../src/core/errors.ts";
import { compareHlc, formatHlc, HlcClock, parseHlc } from "../../src/core/hlc.ts";
import type { Change, Mutation } from "../../src/core/protocol/sync.ts";
import { isUuid, uuidv7 } from "../../src/core/uuid.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";

export interface StoreOpenOptions {
  path: string;
  now?: () => number;
  maxContentBytes?: number;
}
export type StoreFactory = (opts: StoreOpenOptions) => EdgeStore;

const T0 = Date.parse("2026-03-01T10:00:00.000Z");

/** A controllable wall clock. */
export function fakeClock(start = T0) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
    set: (ms: number) => {
      t = ms;
    },
  };
}

/** A change as the VPS feed would carry it, written by another device. */
export function remoteChange(
  over: Partial<Change> & { ms: number; node?: string; counter?: number },
): Change {
  const { ms, node = "device-b", counter = 0, ...rest } = over;
  const at = new Date(ms).toISOString();
  return {
    id: rest.id ?? uuidv7(ms),
    content: rest.content ?? "a memory written on another device",
    kind: rest.kind ?? "episodic",
    tags: rest.tags ?? [],
    metadata: rest.metadata ?? {},
    embedding: rest.embedding ?? null,
    created_at: rest.created_at ?? at,
    updated_at: rest.updated_at ?? at,
    hlc: rest.hlc ?? formatHlc({ ms, counter, node }),
    deleted: rest.deleted ?? false,
    origin_device: rest.origin_device ?? node,
    scope: rest.scope ?? null,
    source: rest.source ?? "cli",
    occurred_at: rest.occurred_at ?? null,
    seq: rest.seq ?? 1,
    ...(rest.base_hlc !== undefined ? { base_hlc: rest.base_hlc } : {}),
  };
}

async function expectCode(fn: () => unknown, code: string) {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(DionysusError);
  expect((caught as DionysusError).code).toBe(code as DionysusError["code"]);
}

const ids = (ms: Mutation[]) => ms.map((m) => m.mutation_id);

export function edgeStoreContract(name: string, open: StoreFactory): void {
  describe(`EdgeStore contract: ${name}`, () => {
    const dirs: string[] = [];
    const stores: EdgeStore[] = [];

    function freshPath(): string {
      const dir = mkdtempSync(join(tmpdir(), "dionysus-store-"));
      dirs.push(dir);
      return join(dir, "edge.db");
    }
    function openAt(path: string, opts: Omit<StoreOpenOptions, "path"> = {}): EdgeStore {
      const s = open({ path, ...opts });
      stores.push(s);
      return s;
    }
    function fresh(opts: Omit<StoreOpenOptions, "path"> = {}) {
      const path = freshPath();
      return { store: openAt(path, opts), path };
    }

    afterEach(() => {
      for (const s of stores.splice(0)) {
        try {
          s.close();
        } catch {
          // already closed by the test
        }
      }
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });

    describe("local writes", () => {
      test("create stores the memory as a local, unsynced write of this device", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const m = store.create({
          content: "Coffee with Ana on Tuesday",
          kind: "episodic",
          tags: ["ana"],
          metadata: { a: 1 },
        });
        expect(isUuid(m.id)).toBe(true);
        expect(m).toMatchObject({
          content: "Coffee with Ana on Tuesday",
          kind: "episodic",
          tags: ["ana"],
          metadata: { a: 1 },
          deleted: false,
          origin_device: store.deviceId,
          origin: "local",
          private: false,
          scope: null,
          source: "unknown",
          occurred_at: null,
          synced_at: null,
          created_at: new Date(T0).toISOString(),
          updated_at: new Date(T0).toISOString(),
        });
        expect(parseHlc(m.hlc)?.node).toBe(store.deviceId);
        const read = store.get(m.id);
        expect(read).toMatchObject({
          id: m.id,
          content: m.content,
          tags: ["ana"],
          metadata: { a: 1 },
          hlc: m.hlc,
        });
        expect(store.countMemories()).toBe(1);
      });

      test("every write is queued with the next gapless mutation id and the state it wrote", () => {
        const { store } = fresh();
        const a = store.create({ content: "first", kind: "episodic", tags: [], metadata: {} });
        const b = store.create({ content: "second", kind: "identity", tags: ["me"], metadata: {} });
        const a2 = store.update(a.id, { content: "first, edited" });
        store.delete(b.id);
        expect(store.queueCounts()).toEqual({ queued: 4, syncing: 0, synced: 0, failed: 0 });
        const batch = store.claimBatch(10);
        expect(ids(batch)).toEqual([1, 2, 3, 4]);
        expect(batch.map((m) => [m.op, m.id])).toEqual([
          ["create", a.id],
          ["create", b.id],
          ["update", a.id],
          ["delete", b.id],
        ]);
        const [c1, , u1, d1] = batch;
        expect(c1).toMatchObject({ op: "create", hlc: a.hlc, data: { content: "first", kind: "episodic" } });
        expect(u1).toMatchObject({ op: "update", hlc: a2.hlc, data: { content: "first, edited" } });
        expect(d1 && "data" in d1).toBe(false);
        // Each mutation's stamp is newer than the previous one.
        for (let i = 1; i < batch.length; i++) expect(compareHlc(batch[i - 1]!.hlc, batch[i]!.hlc)).toBe(-1);
      });

      test("mutation ids and the clock continue after reopening, even when the wall clock went back", () => {
        const clock = fakeClock();
        const path = freshPath();
        const s1 = openAt(path, { now: clock.now });
        const m = s1.create({ content: "before restart", kind: "episodic", tags: [], metadata: {} });
        const deviceId = s1.deviceId;
        s1.close();
        clock.advance(-3_600_000); // the wall clock is set back an hour
        const s2 = openAt(path, { now: clock.now });
        expect(s2.deviceId).toBe(deviceId);
        const n = s2.create({ content: "after restart", kind: "episodic", tags: [], metadata: {} });
        expect(compareHlc(m.hlc, n.hlc)).toBe(-1);
        expect(ids(s2.claimBatch(10))).toEqual([1, 2]);
        expect(s2.get(m.id)?.content).toBe("before restart");
      });

      test("update changes only the given fields and re-stamps; delete tombstones", () => {
        const { store } = fresh();
        const m = store.create({
          content: "Paris trip",
          kind: "episodic",
          tags: ["travel"],
          metadata: { x: 1 },
        });
        const u = store.update(m.id, { tags: ["travel", "2026"] });
        expect(u).toMatchObject({ content: "Paris trip", tags: ["travel", "2026"], metadata: { x: 1 } });
        expect(compareHlc(m.hlc, u.hlc)).toBe(-1);
        expect(store.get(m.id)?.tags).toEqual(["travel", "2026"]);
        store.delete(m.id);
        expect(store.get(m.id)).toBeUndefined();
        expect(store.countMemories()).toBe(0);
        expect(store.recent(10)).toEqual([]);
        expect(store.recall("Paris", 10)).toEqual([]);
      });

      test("unknown and deleted ids are not_found and queue nothing", async () => {
        const { store } = fresh();
        const m = store.create({ content: "to forget", kind: "episodic", tags: [], metadata: {} });
        store.delete(m.id);
        const before = store.queueCounts();
        await expectCode(() => store.update(uuidv7(), { content: "x" }), "not_found");
        await expectCode(() => store.delete(uuidv7()), "not_found");
        await expectCode(() => store.delete(m.id), "not_found");
        await expectCode(() => store.update(m.id, { content: "back" }), "not_found");
        await expectCode(() => store.delete("not-a-uuid"), "not_found");
        expect(store.get("not-a-uuid")).toBeUndefined();
        expect(store.queueCounts()).toEqual(before);
      });

      test("bad input is refused with a coded error and changes nothing", async () => {
        const { store } = fresh({ maxContentBytes: 64 });
        const m = store.create({ content: "kept as is", kind: "episodic", tags: [], metadata: {} });
        const snapshot = () => ({
          n: store.countMemories(),
          q: store.queueCounts(),
          m: store.get(m.id)?.content,
        });
        const before = snapshot();
        const base = { kind: "episodic" as const, tags: [], metadata: {} };
        await expectCode(() => store.create({ ...base, content: "" }), "invalid_input");
        await expectCode(() => store.create({ ...base, content: " \n\t " }), "invalid_input");
        await expectCode(() => store.create({ ...base, content: "x".repeat(65) }), "payload_too_large");
        await expectCode(() => store.create({ ...base, content: "é".repeat(33) }), "payload_too_large");
        await expectCode(() => store.create({ ...base, content: "nul \u0000 inside" }), "invalid_input");
        await expectCode(() => store.create({ ...base, content: "ok", tags: [""] }), "invalid_input");
        await expectCode(() => store.update(m.id, { content: "   " }), "invalid_input");
        await expectCode(() => store.update(m.id, {}), "invalid_input");
        await expectCode(() => store.update(m.id, { content: "y".repeat(100) }), "payload_too_large");
        expect(snapshot()).toEqual(before);
        // The boundary itself is accepted.
        expect(store.create({ ...base, content: "z".repeat(64) }).content.length).toBe(64);
      });

      test("recent lists live memories newest first", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const made = [];
        for (let i = 0; i < 5; i++) {
          made.push(store.create({ content: `memory ${i}`, kind: "episodic", tags: [], metadata: {} }));
          clock.advance(1000);
        }
        store.delete(made[4]!.id);
        store.update(made[0]!.id, { content: "memory 0, edited last" });
        expect(store.recent(3).map((m) => m.content)).toEqual([
          "memory 0, edited last",
          "memory 3",
          "memory 2",
        ]);
        expect(store.recent(100)).toHaveLength(4);
      });

      test("get records the access for LRU eviction", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const m = store.create({ content: "read me", kind: "episodic", tags: [], metadata: {} });
        expect(m.last_accessed_at).toBeNull();
        clock.advance(5 * 60_000);
        expect(store.get(m.id)?.last_accessed_at).toBe(new Date(clock.now()).toISOString());
        expect(store.recent(1)[0]?.last_accessed_at).toBe(new Date(clock.now()).toISOString());
      });
    });

    describe("recall", () => {
      function seeded() {
        const { store } = fresh();
        const add = (content: string, tags: string[] = []) =>
          store.create({ content, kind: "episodic", tags, metadata: {} });
        const run = add("I went running by the river; running clears my head. Running daily now.");
        const runs = add("She runs a small bakery near the station.");
        const coffee = add("Coffee with Ana: we talked about her new job at the museum.");
        const tagged = add("Quarterly planning notes.", ["budget"]);
        add("The weather was grey and cold all week.");
        return { store, run, runs, coffee, tagged };
      }

      test("ranks by relevance with stemming, and returns a highlighted snippet", () => {
        const { store, run, runs } = seeded();
        const hits = store.recall("run", 10);
        expect(hits.map((h) => h.memory.id)).toEqual([run.id, runs.id]);
        expect(hits[0]!.score).toBeGreaterThan(hits[1]!.score);
        expect(hits[1]!.score).toBeGreaterThan(0);
        expect(hits[0]!.snippet).toContain("**running**");
        expect(hits[0]!.memory).toMatchObject({ content: run.content, origin: "local" });
      });

      test("finds words in tags and respects the limit", () => {
        const { store, tagged } = seeded();
        expect(store.recall("budget", 10).map((h) => h.memory.id)).toEqual([tagged.id]);
        expect(store.recall("the", 2)).toHaveLength(2);
      });

      test("reindexes updated content and forgets deleted memories", () => {
        const { store, coffee } = seeded();
        store.update(coffee.id, { content: "Tea with Ana at the harbour." });
        expect(store.recall("coffee", 10)).toEqual([]);
        expect(store.recall("harbour", 10).map((h) => h.memory.id)).toEqual([coffee.id]);
        store.delete(coffee.id);
        expect(store.recall("harbour ana", 10)).toEqual([]);
      });

      test.each([
        '"',
        "*",
        "foo AND (",
        "NEAR(",
        "-x",
        "'; drop table memories; --",
        "🍕🎉",
        "coffee OR",
        "content:ana",
        "^coffee",
        "a".repeat(5000),
      ])("user text is never FTS5 syntax: %p", (q) => {
        const { store, coffee } = seeded();
        const hits = store.recall(q, 10);
        expect(Array.isArray(hits)).toBe(true);
        if (q === "content:ana") expect(hits.map((h) => h.memory.id)).toContain(coffee.id);
        if (q === "coffee OR") expect(hits[0]?.memory.id).toBe(coffee.id);
        expect(store.countMemories()).toBe(5);
      });

      test("queries without words return an empty list", () => {
        const { store } = seeded();
        expect(store.recall("", 10)).toEqual([]);
        expect(store.recall("  ?! ", 10)).toEqual([]);
      });
    });

    describe("push side of sync", () => {
      function withWrites(n: number, opts: Omit<StoreOpenOptions, "path"> = {}) {
        const { store, path } = fresh(opts);
        const made = [];
        for (let i = 0; i < n; i++)
          made.push(store.create({ content: `write ${i}`, kind: "episodic", tags: [], metadata: {} }));
        return { store, made, path };
      }

      test("claimBatch claims in order, up to the limit, and marks the items syncing", () => {
        const { store } = withWrites(5);
        expect(ids(store.claimBatch(3))).toEqual([1, 2, 3]);
        expect(store.queueCounts()).toEqual({ queued: 2, syncing: 3, synced: 0, failed: 0 });
        expect(store.queueItems("syncing", 10).map((i) => i.mutation_id)).toEqual([1, 2, 3]);
        // One batch in flight at a time: the VPS must see mutation ids in order.
        expect(store.claimBatch(3)).toEqual([]);
      });

      test("settle: applied, stale and duplicate are synced; unanswered items go back to the queue", () => {
        const { store, made } = withWrites(4);
        store.claimBatch(4);
        store.settle([
          { index: 0, mutation_id: 1, status: "applied" },
          { index: 1, mutation_id: 2, status: "duplicate" },
          { index: 2, mutation_id: 3, status: "stale" },
        ]);
        expect(store.queueCounts()).toEqual({ queued: 1, syncing: 0, synced: 3, failed: 0 });
        expect(store.get(made[0]!.id)?.synced_at).not.toBeNull();
        expect(store.get(made[3]!.id)?.synced_at).toBeNull();
        expect(ids(store.claimBatch(10))).toEqual([4]);
      });

      test("synced_at is set only when the memory's current version is the one synced", () => {
        const { store, made } = withWrites(1);
        const m = made[0]!;
        store.claimBatch(1);
        store.update(m.id, { content: "edited while the create was in flight" });
        store.settle([{ index: 0, mutation_id: 1, status: "applied" }]);
        expect(store.get(m.id)?.synced_at).toBeNull();
        store.claimBatch(10);
        store.settle([{ index: 0, mutation_id: 2, status: "applied" }]);
        expect(store.get(m.id)?.synced_at).not.toBeNull();
      });

      test("settle: a permanent rejection fails the item with its reason, a retryable one requeues it", () => {
        const { store } = withWrites(3);
        store.claimBatch(3);
        store.settle([
          {
            index: 0,
            mutation_id: 1,
            status: "rejected",
            code: "invalid_input",
            reason: "bad tags",
            retryable: false,
          },
          {
            index: 1,
            mutation_id: 2,
            status: "rejected",
            code: "clock_skew",
            reason: "too far ahead",
            retryable: true,
          },
          { index: 2, mutation_id: 3, status: "applied" },
        ]);
        expect(store.queueCounts()).toEqual({ queued: 1, syncing: 0, synced: 1, failed: 1 });
        const [failed] = store.queueItems("failed", 10);
        expect(failed).toMatchObject({ mutation_id: 1, status: "failed" });
        expect(failed!.last_error).toContain("bad tags");
        const [queued] = store.queueItems("queued", 10);
        expect(queued).toMatchObject({ mutation_id: 2, retry_count: 1 });
        expect(queued!.last_error).toContain("too far ahead");
        // A failed item stays visible and does not block the rest.
        expect(ids(store.claimBatch(10))).toEqual([2]);
      });

      test("release backs the items off; they are not claimed before they are due", () => {
        const clock = fakeClock();
        const { store } = withWrites(2, { now: clock.now });
        const batch = store.claimBatch(10);
        store.release(ids(batch), "connect ECONNREFUSED", clock.now() + 10_000);
        const items = store.queueItems("queued", 10);
        expect(items.map((i) => [i.mutation_id, i.retry_count, i.last_error])).toEqual([
          [1, 1, "connect ECONNREFUSED"],
          [2, 1, "connect ECONNREFUSED"],
        ]);
        expect(items[0]!.next_attempt_at).toBe(new Date(clock.now() + 10_000).toISOString());
        store.create({ content: "written while backing off", kind: "episodic", tags: [], metadata: {} });
        // The new write is due, but it must not overtake the backed-off ones.
        expect(store.claimBatch(10)).toEqual([]);
        expect(ids(store.claimBatch(10, clock.now() + 10_000))).toEqual([1, 2, 3]);
      });

      test("requeueSyncing puts a batch interrupted by a crash back in the queue", () => {
        const { store, path } = withWrites(3);
        store.claimBatch(2);
        store.close();
        const again = openAt(path);
        expect(again.requeueSyncing()).toBe(2);
        expect(again.queueCounts()).toEqual({ queued: 3, syncing: 0, synced: 0, failed: 0 });
        expect(ids(again.claimBatch(10))).toEqual([1, 2, 3]);
      });

      test("restamp gives queued mutations new stamps, on the queue and the memory", () => {
        const { store, made } = withWrites(2);
        const stamps = [
          formatHlc({ ms: T0 + 1, counter: 0, node: store.deviceId }),
          formatHlc({ ms: T0 + 2, counter: 0, node: store.deviceId }),
        ];
        const batch = store.claimBatch(10);
        store.settle([]);
        let i = 0;
        store.restamp(ids(batch), () => stamps[i++]!);
        const again = store.claimBatch(10);
        expect(again.map((m) => m.hlc)).toEqual(stamps);
        expect(store.get(made[1]!.id)?.hlc).toBe(stamps[1]!);
        // Later local writes still order after the new stamps.
        const next = store.create({ content: "after restamp", kind: "episodic", tags: [], metadata: {} });
        expect(compareHlc(next.hlc, stamps[1]!)).toBe(1);
      });

      test("forgetting a memory queues a delete after its unsynced writes", () => {
        const { store, made } = withWrites(1);
        store.delete(made[0]!.id);
        const batch = store.claimBatch(10);
        expect(batch.map((m) => m.op)).toEqual(["create", "delete"]);
        expect(batch[0]).toMatchObject({ data: { content: "write 0" } });
      });
    });

    describe("pull side of sync", () => {
      test("dataVersion changes with a queued local write and with a pull, not with a read or a private write", () => {
        const { store } = fresh();
        const v0 = store.dataVersion();
        const m = store.create({ content: "shared", kind: "episodic", tags: [], metadata: {} });
        const v1 = store.dataVersion();
        expect(v1).not.toBe(v0);
        store.get(m.id);
        store.recall("shared", 5);
        store.create({ content: "kept here", kind: "episodic", tags: [], metadata: {}, private: true });
        expect(store.dataVersion()).toBe(v1);
        store.applyChanges([remoteChange({ ms: T0, content: "from elsewhere" })], "e1.1");
        expect(store.dataVersion()).not.toBe(v1);
      });

      test("new remote memories are stored as cached VPS rows with the cursor", () => {
        const { store } = fresh();
        expect(store.cursor()).toBeUndefined();
        const c = remoteChange({ ms: T0, content: "Dentist appointment on Friday", tags: ["health"] });
        const r = store.applyChanges([c], "e1.1");
        expect(r).toEqual({ applied: 1, skipped: 0, conflicts: 0 });
        expect(store.cursor()).toBe("e1.1");
        expect(store.get(c.id)).toMatchObject({
          content: c.content,
          origin: "vps",
          hlc: c.hlc,
          origin_device: "device-b",
        });
        expect(store.get(c.id)?.synced_at).not.toBeNull();
        expect(store.recall("dentist", 5).map((h) => h.memory.id)).toEqual([c.id]);
        // Applying remote changes queues nothing.
        expect(store.queueCounts().queued).toBe(0);
      });

      test("a newer remote version overwrites the local one and logs the local loser", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const m = store.create({ content: "local version", kind: "episodic", tags: [], metadata: {} });
        const c = remoteChange({ ms: T0 + 5_000, id: m.id, content: "remote version" });
        const r = store.applyChanges([c], "e1.2");
        expect(r).toEqual({ applied: 1, skipped: 0, conflicts: 1 });
        expect(store.get(m.id)).toMatchObject({ content: "remote version", origin: "vps", hlc: c.hlc });
        const [entry] = store.conflicts(10);
        expect(entry).toMatchObject({ memory_id: m.id, winner_hlc: c.hlc, loser_hlc: m.hlc });
        expect(entry!.loser?.content).toBe("local version");
        // The unsynced local write stays queued: the VPS decides with the same rule.
        expect(store.queueCounts().queued).toBe(1);
        expect(store.recall("local", 5)).toEqual([]);
      });

      test("an older remote version is skipped and logged as the loser", () => {
        const clock = fakeClock(T0 + 60_000);
        const { store } = fresh({ now: clock.now });
        const m = store.create({ content: "newer local", kind: "episodic", tags: [], metadata: {} });
        const c = remoteChange({ ms: T0, id: m.id, content: "older remote" });
        const r = store.applyChanges([c], "e1.3");
        expect(r).toEqual({ applied: 0, skipped: 1, conflicts: 0 });
        expect(store.get(m.id)?.content).toBe("newer local");
        const [entry] = store.conflicts(10);
        expect(entry).toMatchObject({ memory_id: m.id, winner_hlc: m.hlc, loser_hlc: c.hlc });
        expect(entry!.loser?.content).toBe("older remote");
        expect(store.cursor()).toBe("e1.3");
      });

      test("our own write echoed back only marks it synced", () => {
        const { store } = fresh();
        const m = store.create({ content: "mine", kind: "episodic", tags: [], metadata: {} });
        const { origin: _o, private: _p, synced_at: _y, last_accessed_at: _l, ...plain } = m;
        const r = store.applyChanges([{ ...plain, seq: 7 }], "e1.7");
        expect(r).toEqual({ applied: 0, skipped: 0, conflicts: 0 });
        expect(store.get(m.id)).toMatchObject({ origin: "local", content: "mine" });
        expect(store.get(m.id)?.synced_at).not.toBeNull();
        expect(store.conflicts(10)).toEqual([]);
      });

      test("a remote tombstone deletes the memory; an older write cannot bring it back", () => {
        const { store } = fresh();
        const live = remoteChange({ ms: T0, content: "to be deleted elsewhere" });
        store.applyChanges([live], "e1.1");
        const tomb = remoteChange({ ms: T0 + 1000, id: live.id, content: "", deleted: true, seq: 2 });
        store.applyChanges([tomb], "e1.2");
        expect(store.get(live.id)).toBeUndefined();
        expect(store.recall("deleted elsewhere", 5)).toEqual([]);
        const stale = remoteChange({ ms: T0 + 500, id: live.id, content: "stale resurrection", seq: 3 });
        expect(store.applyChanges([stale], "e1.3").skipped).toBe(1);
        expect(store.get(live.id)).toBeUndefined();
      });

      test("a remote newer than an unchanged synced local row replaces it without a conflict when equal", () => {
        const { store } = fresh();
        const m = store.create({ content: "same text", kind: "episodic", tags: [], metadata: {} });
        store.claimBatch(10);
        store.settle([{ index: 0, mutation_id: 1, status: "applied" }]);
        const c = remoteChange({ ms: Date.now() + 60_000, id: m.id, content: "same text" });
        expect(store.applyChanges([c], "e1.9")).toEqual({ applied: 1, skipped: 0, conflicts: 0 });
        expect(store.get(m.id)?.hlc).toBe(c.hlc);
      });

      test("an edit made on top of our version (base_hlc = our stamp) is not a conflict", () => {
        const { store } = fresh();
        const m = store.create({ content: "first draft", kind: "episodic", tags: [], metadata: {} });
        const edit = remoteChange({
          ms: Date.now() + 1_000,
          id: m.id,
          content: "second draft",
          base_hlc: m.hlc,
        });
        expect(store.applyChanges([edit], "e1.2")).toEqual({ applied: 1, skipped: 0, conflicts: 0 });
        expect(store.get(m.id)?.content).toBe("second draft");
        expect(store.conflicts(10)).toEqual([]);
      });

      test("a concurrent edit (base_hlc is not our stamp) overwrites ours and logs it", () => {
        const { store } = fresh();
        const orig = remoteChange({ ms: T0, content: "shared note" });
        store.applyChanges([orig], "e1.1");
        const mine = store.update(orig.id, { content: "my edit" });
        const theirs = remoteChange({
          ms: Date.now() + 1_000,
          id: orig.id,
          content: "their edit",
          base_hlc: orig.hlc,
          seq: 2,
        });
        expect(store.applyChanges([theirs], "e1.2").conflicts).toBe(1);
        const [entry] = store.conflicts(10);
        expect(entry).toMatchObject({ memory_id: orig.id, winner_hlc: theirs.hlc, loser_hlc: mine.hlc });
        expect(entry!.loser?.content).toBe("my edit");
      });

      test("updates and deletes are queued with the stamp they replaced as base_hlc", () => {
        const { store } = fresh();
        const m = store.create({ content: "v1", kind: "episodic", tags: [], metadata: {} });
        const v2 = store.update(m.id, { content: "v2" });
        store.delete(m.id);
        const batch = store.claimBatch(10);
        expect(batch.map((b) => b.base_hlc ?? null)).toEqual([null, m.hlc, v2.hlc]);
      });

      test("conflict entries from the VPS join the local log once", () => {
        const { store } = fresh();
        const c = remoteChange({ ms: T0 + 10, content: "winner" });
        const entry = {
          memory_id: c.id,
          winner_hlc: c.hlc,
          loser_hlc: formatHlc({ ms: T0, counter: 0, node: "device-c" }),
          loser: null,
          resolved_at: new Date(T0 + 20).toISOString(),
        };
        store.applyChanges([c], "e1.1.1", [entry]);
        store.applyChanges([], "e1.1.1", [entry]);
        expect(store.conflicts(10)).toEqual([entry]);
      });

      test("applyIdentity stores the baseline without moving the cursor", () => {
        const { store } = fresh();
        store.applyChanges([remoteChange({ ms: T0 })], "e1.5");
        const { seq: _seq, ...identity } = remoteChange({
          ms: T0 + 1,
          kind: "identity",
          content: "I am Ana",
        });
        expect(store.applyIdentity([identity])).toBe(1);
        expect(store.get(identity.id)).toMatchObject({ kind: "identity", origin: "vps" });
        expect(store.cursor()).toBe("e1.5");
      });

      test("a clock found to be ahead restarts from corrected time, and restamp fixes queued writes", () => {
        const ahead = 10 * 60_000;
        const { store } = fresh({ now: () => Date.now() + ahead });
        const m = store.create({
          content: "written with a fast clock",
          kind: "episodic",
          tags: [],
          metadata: {},
        });
        expect(parseHlc(m.hlc)!.ms).toBeGreaterThan(Date.now() + ahead - 5_000);
        store.setClockOffset(-ahead);
        const fixedClock = new HlcClock(store.deviceId, Date.now);
        store.restamp([1], () => fixedClock.tick());
        const [queued] = store.claimBatch(10);
        const fixed = parseHlc(queued!.hlc)!.ms;
        expect(Math.abs(fixed - Date.now())).toBeLessThan(5_000);
        const later = store.create({ content: "next write", kind: "episodic", tags: [], metadata: {} });
        expect(compareHlc(later.hlc, queued!.hlc)).toBe(1);
        expect(parseHlc(later.hlc)!.ms - Date.now()).toBeLessThan(5_000);
      });

      test("the page and its cursor are stored in one transaction", async () => {
        const { store } = fresh();
        store.applyChanges([remoteChange({ ms: T0 })], "e1.1");
        const good = remoteChange({ ms: T0 + 1, content: "good change" });
        const broken = { ...remoteChange({ ms: T0 + 2 }), tags: undefined } as unknown as Change;
        let threw = false;
        try {
          store.applyChanges([good, broken], "e1.3");
        } catch {
          threw = true;
        }
        expect(threw).toBe(true);
        expect(store.cursor()).toBe("e1.1");
        expect(store.get(good.id)).toBeUndefined();
      });

      test("remote stamps from a clock far ahead push the local clock forward", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const ahead = remoteChange({ ms: T0 + 3_600_000 });
        store.applyChanges([ahead], "e1.1");
        const m = store.create({
          content: "written after the pull",
          kind: "episodic",
          tags: [],
          metadata: {},
        });
        expect(compareHlc(m.hlc, ahead.hlc)).toBe(1);
        const far = formatHlc({ ms: T0 + 7_200_000, counter: 3, node: "device-c" });
        store.observeHlc(far);
        const n = store.create({ content: "after observing", kind: "episodic", tags: [], metadata: {} });
        expect(compareHlc(n.hlc, far)).toBe(1);
        store.observeHlc("not a stamp");
      });

      test("resetCache forgets the cursor and cached rows but keeps unsynced local writes", () => {
        const { store } = fresh();
        const cached = remoteChange({ ms: T0, content: "cached from the VPS" });
        const edited = remoteChange({ ms: T0, content: "cached, then edited here", seq: 2 });
        store.applyChanges([cached, edited], "e1.2");
        store.update(edited.id, { content: "edited here, not yet synced" });
        const local = store.create({ content: "written offline", kind: "episodic", tags: [], metadata: {} });
        store.resetCache();
        expect(store.cursor()).toBeUndefined();
        expect(store.get(cached.id)).toBeUndefined();
        expect(store.get(edited.id)?.content).toBe("edited here, not yet synced");
        expect(store.get(local.id)?.content).toBe("written offline");
        expect(ids(store.claimBatch(10))).toEqual([1, 2]);
      });

      test("conflicts are listed newest first", () => {
        const clock = fakeClock(T0 + 60_000);
        const { store } = fresh({ now: clock.now });
        const a = store.create({ content: "a", kind: "episodic", tags: [], metadata: {} });
        const b = store.create({ content: "b", kind: "episodic", tags: [], metadata: {} });
        store.applyChanges([remoteChange({ ms: T0, id: a.id, content: "old a" })], "e1.1");
        store.applyChanges([remoteChange({ ms: T0, id: b.id, content: "old b", seq: 2 })], "e1.2");
        expect(store.conflicts(10).map((c) => c.memory_id)).toEqual([b.id, a.id]);
        expect(store.conflicts(1)).toHaveLength(1);
      });
    });

    describe("clock, settings and several handles", () => {
      test("the clock offset corrects local stamps and survives a restart", () => {
        const clock = fakeClock();
        const path = freshPath();
        const s1 = openAt(path, { now: clock.now });
        s1.setClockOffset(120_000);
        expect(parseHlc(s1.create({ content: "a", kind: "episodic", tags: [], metadata: {} }).hlc)?.ms).toBe(
          T0 + 120_000,
        );
        s1.close();
        clock.advance(200_000);
        const s2 = openAt(path, { now: clock.now });
        expect(parseHlc(s2.create({ content: "b", kind: "episodic", tags: [], metadata: {} }).hlc)?.ms).toBe(
          T0 + 320_000,
        );
      });

      test("resetDeviceId gives a new id, keeps memories and the queue, and other handles follow", () => {
        const { store, path } = fresh();
        const other = openAt(path);
        const m = store.create({ content: "before", kind: "episodic", tags: [], metadata: {} });
        const old = store.deviceId;
        const id = store.resetDeviceId();
        expect(id).not.toBe(old);
        expect(isUuid(id)).toBe(true);
        expect(store.get(m.id)?.content).toBe("before");
        expect(store.queueCounts().queued).toBe(1);
        expect(other.deviceId).toBe(id);
        const later = other.create({ content: "after", kind: "episodic", tags: [], metadata: {} });
        expect(later.origin_device).toBe(id);
        expect(parseHlc(later.hlc)?.node).toBe(id);
        expect(compareHlc(later.hlc, m.hlc)).toBe(1);
      });

      test("resetDeviceId re-stamps unsent writes under the new node, keeping their order and chain", () => {
        const { store } = fresh();
        const m = store.create({ content: "one", kind: "episodic", tags: [], metadata: {} });
        store.update(m.id, { content: "two" });
        const other = store.create({ content: "other", kind: "episodic", tags: [], metadata: {} });
        const id = store.resetDeviceId("split-device-1");
        expect(id).toBe("split-device-1");
        const batch = store.claimBatch(10);
        expect(batch.map((b) => parseHlc(b.hlc)?.node)).toEqual([
          "split-device-1",
          "split-device-1",
          "split-device-1",
        ]);
        expect(compareHlc(batch[1]!.hlc, batch[0]!.hlc)).toBe(1);
        expect(compareHlc(batch[2]!.hlc, batch[1]!.hlc)).toBe(1);
        // The update is still based on the create's (new) stamp.
        expect(batch[1]!.base_hlc).toBe(batch[0]!.hlc);
        expect(store.get(m.id)?.hlc).toBe(batch[1]!.hlc);
        expect(store.get(other.id)?.origin_device).toBe("split-device-1");
      });

      test("a database copied to another file marks itself for a new device identity; the original does not", () => {
        const { store, path } = fresh();
        store.create({ content: "written before the copy", kind: "episodic", tags: [], metadata: {} });
        store.setMeta("sync_lease", "12345-abc|99999999999999");
        store.close();
        const copy = join(dirname(path), "copy.db");
        for (const suffix of ["", "-wal"])
          if (existsSync(`${path}${suffix}`)) copyFileSync(`${path}${suffix}`, `${copy}${suffix}`);
        const original = openAt(path);
        expect(original.splitPending()).toBeUndefined();
        const copied = openAt(copy);
        expect(copied.splitPending()).toContain("copied or restored");
        // The copied lease names the original's process: it must not hold the copy back.
        expect(copied.getMeta("sync_lease")).toBeUndefined();
        copied.resetDeviceId();
        expect(copied.splitPending()).toBeUndefined();
        copied.close();
        expect(openAt(copy).splitPending()).toBeUndefined();
      });

      test("a stale answer shows the version that won at once", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const m = store.create({ content: "mine", kind: "episodic", tags: [], metadata: {} });
        const [mut] = store.claimBatch(10);
        const winner = remoteChange({ id: m.id, ms: T0 + 5_000, content: "theirs, newer", seq: 3 });
        const { seq: _seq, base_hlc: _b, ...current } = winner;
        store.settle([{ index: 0, mutation_id: mut!.mutation_id, status: "stale", current }]);
        expect(store.get(m.id)?.content).toBe("theirs, newer");
        expect(store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, synced: 1 });
        expect(store.conflicts(10).map((c) => c.loser?.content)).toEqual(["mine"]);
      });

      test("created_at and updated_at follow the corrected clock", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        store.setClockOffset(-3_600_000);
        const m = store.create({ content: "stamped", kind: "episodic", tags: [], metadata: {} });
        expect(Date.parse(m.created_at)).toBe(T0 - 3_600_000);
        expect(Date.parse(store.update(m.id, { content: "again" }).updated_at)).toBe(T0 - 3_600_000);
      });

      test("meta values persist", () => {
        const path = freshPath();
        const s1 = openAt(path);
        expect(s1.getMeta("sync.last_success")).toBeUndefined();
        s1.setMeta("sync.last_success", "2026-03-01T10:00:00Z");
        s1.setMeta("sync.last_success", "2026-03-01T11:00:00Z");
        s1.close();
        expect(openAt(path).getMeta("sync.last_success")).toBe("2026-03-01T11:00:00Z");
      });

      test("two handles on one database (daemon and CLI) interleave writes safely", () => {
        const path = freshPath();
        const a = openAt(path);
        const b = openAt(path);
        expect(b.deviceId).toBe(a.deviceId);
        const made = [];
        for (let i = 0; i < 20; i++) {
          const s = i % 3 === 0 ? b : a;
          made.push(s.create({ content: `interleaved ${i}`, kind: "episodic", tags: [], metadata: {} }));
        }
        const batch = a.claimBatch(100);
        expect(ids(batch)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
        for (let i = 1; i < batch.length; i++) expect(compareHlc(batch[i - 1]!.hlc, batch[i]!.hlc)).toBe(-1);
        expect(b.claimBatch(100)).toEqual([]); // a's batch is in flight
        expect(b.countMemories()).toBe(20);
        expect(b.recall("interleaved", 100)).toHaveLength(20);
      });
    });

    describe("size and eviction", () => {
      function filler(i: number) {
        const words = ["alpha", "river", "garden", "letter", "winter", "market", "signal", "orange"];
        return Array.from(
          { length: 600 },
          (_, j) => `${words[(i * 7 + j) % words.length]}${(i * 31 + j) % 97}`,
        ).join(" ");
      }

      test("evicts least recently used cached rows, never unsynced writes, and the file shrinks", () => {
        const clock = fakeClock();
        const { store } = fresh({ now: clock.now });
        const changes: Change[] = [];
        for (let i = 0; i < 300; i++)
          changes.push(remoteChange({ ms: T0 - 1_000_000 + i, content: filler(i), seq: i + 1 }));
        store.applyChanges(changes, "e1.300");
        const oldest = changes[0]!;
        const pendingEdit = changes[1]!;
        store.update(pendingEdit.id, { content: `${filler(1)} edited locally` });
        clock.advance(120_000);
        expect(store.get(oldest.id)).toBeDefined(); // now the most recently used
        const local = [];
        for (let i = 0; i < 20; i++)
          local.push(store.create({ content: filler(1000 + i), kind: "episodic", tags: [], metadata: {} }));
        const before = store.sizeBytes();
        expect(before).toBeGreaterThan(1_000_000);
        const limit = Math.floor(before / 4);
        const evicted = store.evict(limit);
        expect(evicted).toBeGreaterThan(0);
        expect(evicted).toBeLessThan(300);
        expect(store.sizeBytes()).toBeLessThanOrEqual(limit);
        for (const m of local) expect(store.get(m.id)?.content).toBe(m.content);
        expect(store.get(pendingEdit.id)?.content).toContain("edited locally");
        expect(store.get(oldest.id)).toBeDefined();
        expect(store.get(changes[2]!.id)).toBeUndefined(); // least recently used went first
        expect(store.queueCounts().queued).toBe(21);
        expect(store.evict(Number.MAX_SAFE_INTEGER)).toBe(0);
      });

      test("eviction cannot go below the unsynced writes", () => {
        const { store } = fresh();
        for (let i = 0; i < 30; i++)
          store.create({ content: filler(i), kind: "episodic", tags: [], metadata: {} });
        expect(store.evict(1)).toBe(0);
        expect(store.countMemories()).toBe(30);
        expect(store.queueCounts().queued).toBe(30);
      });
    });

    describe("keyword index upkeep", () => {
      const words = ["harbour", "violin", "pepper", "meadow", "copper", "falcon", "walnut", "glacier"];
      const text = (i: number) => `note ${i} on the ${words[i % 8]} and the ${words[(i * 3 + 1) % 8]}`;
      test("merging the index keeps every recall answer, and then has nothing left to do", () => {
        const path = freshPath();
        const store = openAt(path);
        for (let i = 0; i < 60; i++)
          store.create({ content: `${text(i)} marker${i % 7}`, kind: "episodic", tags: [], metadata: {} });
        const queries = ["marker3", "marker5 marker6", text(11), text(42)];
        const answers = () => queries.map((q) => store.recall(q, 10).map((h) => [h.memory.id, h.snippet]));
        const before = answers();
        const segments = store.indexStats().segments;
        expect(segments).toBeGreaterThan(1);
        const r = store.mergeIndex({ force: true });
        expect(r).toMatchObject({ done: true, segmentsBefore: segments, segments: 1 });
        expect(store.indexStats()).toMatchObject({ segments: 1, mergeWanted: false });
        expect(answers()).toEqual(before);
        expect(store.mergeIndex()).toMatchObject({ slices: 0, done: true });
        // The other handle (the CLI beside the daemon) writes; its writes are found after a merge.
        const other = openAt(path);
        const late = other.create({
          content: "a late marker99 note",
          kind: "episodic",
          tags: [],
          metadata: {},
        });
        store.mergeIndex({ force: true });
        expect(store.recall("marker99", 5).map((h) => h.memory.id)).toEqual([late.id]);
        expect(answers()).toEqual(before);
      });
    });
  });
}
