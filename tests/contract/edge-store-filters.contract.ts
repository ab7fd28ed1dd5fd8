/**
 * The filter and private-memory part of the EdgeStore contract: the semantics of every filter key
 * (src/core/filter.ts) on `recent` and `recall`, a filtered recall that still fills its page, and
 * private memories that take no mutation number and never reach the queue.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DionysusError } from "../../src/core/errors.ts";
import { type MemoryFilter, parseFilter } from "../../src/core/filter.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { fakeClock, remoteChange, type StoreFactory } from "./edge-store.contract.ts";

/** The clock the filter table's relative times are taken against. */
export const FILTER_TABLE_NOW = Date.parse("2026-03-01T12:00:00.000Z");
const NOW = FILTER_TABLE_NOW;

/** The table's memories: name → fields. Every content holds the word "note". */
export const FILTER_TABLE_ROWS = {
  a: {
    scope: "work",
    tags: ["x", "y"],
    kind: "episodic",
    source: "cli",
    created_at: "2026-03-01T10:00:00.000Z",
    metadata: { project: "dio", n: 3, urgent: true },
  },
  b: {
    scope: "project/dionysus",
    tags: ["x"],
    kind: "identity",
    source: "mcp:claude-desktop",
    created_at: "2026-02-20T00:00:00.000Z",
    metadata: { project: "dio", n: "3" },
  },
  c: {
    scope: "project/dionysus/sub",
    tags: ["y"],
    kind: "summary",
    source: "vps",
    created_at: "2026-01-01T00:00:00.000Z",
    metadata: { n: 3 },
  },
  d: {
    scope: "project",
    tags: [],
    kind: "episodic",
    source: "api",
    created_at: "2026-02-28T12:00:00.000Z",
    metadata: { urgent: false },
  },
  e: {
    scope: "projects",
    tags: ["x"],
    kind: "episodic",
    source: "cli",
    created_at: "2025-12-01T00:00:00.000Z",
    metadata: { project: "other" },
  },
  f: {
    scope: null,
    tags: ["x", "y", "z"],
    kind: "episodic",
    source: "unknown",
    created_at: "2026-02-25T00:00:00.000Z",
    metadata: {},
  },
} as const;
type Name = keyof typeof FILTER_TABLE_ROWS;

/** Filter → the memories it must let through. */
export const FILTER_TABLE: Array<[string, Record<string, unknown>, Name[]]> = [
  ["no filter", {}, ["a", "b", "c", "d", "e", "f"]],
  ["scope exact", { scope: "work" }, ["a"]],
  ["scope exact, case-insensitive", { scope: "WORK" }, ["a"]],
  ["scope exact does not include children", { scope: "project/dionysus" }, ["b"]],
  ["scope prefix includes itself and children, not siblings", { scope: "project/*" }, ["b", "c", "d"]],
  ["scope prefix, deeper", { scope: "project/dionysus/*" }, ["b", "c"]],
  ["scope * is everything", { scope: "*" }, ["a", "b", "c", "d", "e", "f"]],
  ["one tag", { tags: ["x"] }, ["a", "b", "e", "f"]],
  ["tags: must have all", { tags: ["x", "y"] }, ["a", "f"]],
  ["kind", { kind: "identity" }, ["b"]],
  ["source", { source: "mcp:claude-desktop" }, ["b"]],
  ["since relative (2d before 2026-03-01T12:00)", { since: "2d" }, ["a", "d"]],
  ["since relative in hours", { since: "36h" }, ["a", "d"]],
  ["since relative in weeks", { since: "2w" }, ["a", "b", "d", "f"]],
  ["until absolute", { until: "2026-02-21T00:00:00Z" }, ["b", "c", "e"]],
  ["until with an offset", { until: "2026-02-21T01:00:00+01:00" }, ["b", "c", "e"]],
  ["since and until", { since: "2026-02-01T00:00:00Z", until: "2026-02-28T23:00:00Z" }, ["b", "d", "f"]],
  ["metadata string", { metadata: { project: "dio" } }, ["a", "b"]],
  ["metadata number is not the string", { metadata: { n: 3 } }, ["a", "c"]],
  ["metadata string is not the number", { metadata: { n: "3" } }, ["b"]],
  ["metadata true", { metadata: { urgent: true } }, ["a"]],
  ["metadata false", { metadata: { urgent: false } }, ["d"]],
  ["metadata, two keys", { metadata: { project: "dio", urgent: true } }, ["a"]],
  ["scope prefix and a tag", { scope: "project/*", tags: ["x"] }, ["b"]],
  ["kind, since and metadata", { kind: "episodic", since: "7d", metadata: { urgent: false } }, ["d"]],
  ["nothing matches", { scope: "work", kind: "summary" }, []],
];

export function edgeFilterContract(name: string, open: StoreFactory): void {
  describe(`EdgeStore filters and private memories: ${name}`, () => {
    const dirs: string[] = [];
    const stores: EdgeStore[] = [];
    function fresh(now?: () => number): EdgeStore {
      const dir = mkdtempSync(join(tmpdir(), "dionysus-filter-"));
      dirs.push(dir);
      const s = open({ path: join(dir, "edge.db"), ...(now ? { now } : {}) });
      stores.push(s);
      return s;
    }
    afterEach(() => {
      for (const s of stores.splice(0)) s.close();
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    });

    /** A store holding the table's memories (pulled, as another device wrote them). */
    function table(): { store: EdgeStore; idOf: Map<string, Name> } {
      const store = fresh(() => NOW);
      const idOf = new Map<string, Name>();
      const changes = Object.entries(FILTER_TABLE_ROWS).map(([n, r], i) => {
        const c = remoteChange({
          ms: Date.parse(r.created_at),
          content: `a note about ${n}`,
          seq: i + 1,
          scope: r.scope,
          tags: [...r.tags],
          kind: r.kind,
          source: r.source,
          metadata: { ...r.metadata },
          created_at: r.created_at,
        });
        idOf.set(c.id, n as Name);
        return c;
      });
      store.applyChanges(changes, "e.6");
      return { store, idOf };
    }

    describe("every filter key, on list and recall", () => {
      for (const [label, raw, want] of FILTER_TABLE) {
        test(label, () => {
          const { store, idOf } = table();
          const filter: MemoryFilter = parseFilter(raw);
          const names = (ids: string[]) => ids.map((id) => idOf.get(id)).sort();
          expect(names(store.recent(100, filter).map((m) => m.id))).toEqual([...want].sort());
          expect(names(store.recall("note", 100, filter).map((h) => h.memory.id))).toEqual([...want].sort());
        });
      }
    });

    test("a filtered recall still returns a full page: 200 of 10,000 match the filter", () => {
      const store = fresh(() => NOW);
      const changes = [];
      for (let i = 0; i < 10_000; i++) {
        const inScope = i % 50 === 0;
        changes.push(
          remoteChange({
            ms: NOW - 1_000_000 + i,
            // "zebra" is rare, and only in memories outside the filter: a plan that picked its
            // candidates without the filter would find none of the filtered ones.
            content: i % 2000 === 1 ? `zebra note ${i}` : `a note number ${i}`,
            seq: i + 1,
            scope: inScope ? "rare" : "common",
            tags: inScope ? ["r"] : [],
          }),
        );
      }
      store.applyChanges(changes, "e.10000");
      for (const query of ["note", "zebra note", "number"]) {
        const hits = store.recall(query, 10, { scope: "rare" });
        expect(hits).toHaveLength(10);
        for (const h of hits) expect(h.memory.scope).toBe("rare");
      }
      const tagged = store.recall("note", 10, { tags: ["r"] });
      expect(tagged).toHaveLength(10);
      expect(store.recent(10, { scope: "rare" })).toHaveLength(10);
      expect(store.recall("zebra", 10, { scope: "rare" })).toEqual([]);
    });

    test("relative times follow the store's clock", () => {
      const clock = fakeClock(NOW);
      const store = fresh(clock.now);
      const m = store.create({ content: "a fresh note" });
      expect(store.recent(10, { since: "1h" }).map((x) => x.id)).toEqual([m.id]);
      clock.advance(2 * 3600_000);
      expect(store.recent(10, { since: "1h" })).toEqual([]);
      expect(store.recall("note", 10, { since: "3h" }).map((h) => h.memory.id)).toEqual([m.id]);
    });

    describe("new fields", () => {
      test("create records scope, occurred_at and the given source; update keeps the source", () => {
        const store = fresh(() => NOW);
        const m = store.create(
          { content: "met Ana", scope: "Work/Meetings", occurred_at: "2026-02-27T09:00:00+01:00" },
          { source: "mcp:claude-desktop" },
        );
        expect(m).toMatchObject({
          scope: "work/meetings",
          source: "mcp:claude-desktop",
          occurred_at: "2026-02-27T09:00:00+01:00",
          origin: "local",
          private: false,
        });
        const u = store.update(m.id, { scope: null, occurred_at: null });
        expect(store.get(m.id)).toMatchObject({
          scope: null,
          occurred_at: null,
          source: "mcp:claude-desktop",
        });
        expect(u.source).toBe("mcp:claude-desktop");
        const [create, update] = store.claimBatch(10);
        expect(create?.op === "create" && create.data).toMatchObject({
          scope: "work/meetings",
          source: "mcp:claude-desktop",
          occurred_at: "2026-02-27T09:00:00+01:00",
        });
        expect(update?.op === "update" && update.data).toMatchObject({ scope: null, occurred_at: null });
        expect(store.create({ content: "no source given" }).source).toBe("unknown");
      });

      test("bad scopes, times and a caller-set source are refused, naming the field; nothing is stored", () => {
        const store = fresh();
        const bad: Array<[Record<string, unknown>, string]> = [
          [{ scope: "a//b" }, "scope"],
          [{ scope: "/a" }, "scope"],
          [{ scope: "a b" }, "scope"],
          [{ scope: "x".repeat(129) }, "scope"],
          [{ scope: "a/*" }, "scope"],
          [{ occurred_at: "yesterday" }, "occurred_at"],
          [{ source: "cli" }, "source"],
          [{ private: "yes" }, "private"],
        ];
        for (const [extra, field] of bad) {
          let caught: unknown;
          try {
            store.create({ content: "x", ...extra } as never);
          } catch (err) {
            caught = err;
          }
          expect(caught).toBeInstanceOf(DionysusError);
          expect((caught as DionysusError).code).toBe("invalid_input");
          expect((caught as DionysusError).message).toContain(field);
        }
        let caught: unknown;
        try {
          store.create({ content: "x" }, { source: "Not A Source" });
        } catch (err) {
          caught = err;
        }
        expect((caught as DionysusError).message).toContain("source");
        expect(store.countMemories()).toBe(0);
        expect(store.queueCounts().queued).toBe(0);
      });

      test("a pulled version keeps its scope, source and occurred_at", () => {
        const store = fresh();
        const c = remoteChange({
          ms: NOW,
          scope: "home",
          source: "mcp:cursor",
          occurred_at: "2026-01-01T00:00:00.000Z",
        });
        store.applyChanges([c], "e.1");
        expect(store.get(c.id)).toMatchObject({
          scope: "home",
          source: "mcp:cursor",
          occurred_at: "2026-01-01T00:00:00.000Z",
          origin: "vps",
        });
      });
    });

    describe("private memories", () => {
      test("are stored, listed and recalled, and never queued: they take no mutation number", () => {
        const store = fresh();
        const p = store.create({ content: "my secret diary entry", private: true });
        expect(p.private).toBe(true);
        expect(store.queueCounts()).toEqual({ queued: 0, syncing: 0, synced: 0, failed: 0 });
        expect(store.claimBatch(10)).toEqual([]);
        store.update(p.id, { content: "my secret diary entry, edited" });
        expect(store.claimBatch(10)).toEqual([]);
        const s = store.create({ content: "a shared note" });
        const batch = store.claimBatch(10);
        expect(batch.map((m) => [m.mutation_id, m.id])).toEqual([[1, s.id]]);
        expect(JSON.stringify(batch)).not.toContain("diary");
        expect(store.recent(10).map((m) => m.id)).toContain(p.id);
        expect(store.recall("diary", 10).map((h) => h.memory.id)).toEqual([p.id]);
        store.delete(p.id);
        expect(store.get(p.id)).toBeUndefined();
        store.settle([{ index: 0, mutation_id: 1, status: "applied" }]);
        expect(store.claimBatch(10)).toEqual([]);
      });

      test("shared → private sends a delete and keeps the local copy; remote versions leave it alone", () => {
        const store = fresh();
        const m = store.create({ content: "first shared, then private", tags: ["t"] });
        const priv = store.update(m.id, { private: true });
        expect(priv).toMatchObject({ private: true, content: "first shared, then private" });
        const batch = store.claimBatch(10);
        expect(batch.map((x) => [x.mutation_id, x.op])).toEqual([
          [1, "create"],
          [2, "delete"],
        ]);
        store.settle(
          batch.map((x, i) => ({ index: i, mutation_id: x.mutation_id, status: "applied" as const })),
        );
        // The VPS's feed echoes the delete, and another device's edit arrives: neither replaces it.
        const tomb = batch[1]!;
        const echo = remoteChange({ ms: NOW, id: m.id, deleted: true, content: "", hlc: tomb.hlc, seq: 2 });
        const later = remoteChange({
          ms: Date.now() + 60_000,
          id: m.id,
          content: "edited elsewhere",
          seq: 3,
        });
        const r = store.applyChanges([echo, later], "e.3");
        expect(r.applied).toBe(0);
        expect(store.get(m.id)).toMatchObject({ content: "first shared, then private", private: true });
      });

      test("private → shared is queued like a new write (a create, or an update on the VPS's delete)", () => {
        const store = fresh();
        const never = store.create({ content: "private from the start", private: true });
        store.update(never.id, { private: false });
        const [first] = store.claimBatch(10);
        expect(first).toMatchObject({ mutation_id: 1, op: "create", id: never.id, base_hlc: null });
        expect(first?.op === "create" && first.data.content).toBe("private from the start");
        store.settle([{ index: 0, mutation_id: 1, status: "applied" }]);

        const was = store.create({ content: "shared, private, shared again" });
        store.update(was.id, { private: true });
        store.update(was.id, { content: "edited while private" });
        store.update(was.id, { private: false });
        const batch = store.claimBatch(10);
        expect(batch.map((x) => x.op)).toEqual(["create", "delete", "update"]);
        expect(batch[2]!.base_hlc).toBe(batch[1]!.hlc);
        expect(batch[2]?.op === "update" && batch[2].data.content).toBe("edited while private");
        expect(batch.map((x) => x.mutation_id)).toEqual([2, 3, 4]);
      });
    });
  });
}
