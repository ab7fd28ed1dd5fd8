/**
 * Merging the keyword index (store/sqlite/index-merge.ts) and its idle schedule
 * (edge/index-merger.ts), on real SQLite files: a store written one memory at a time has many
 * FTS5 segments; merged it has one, answers every recall the same, and loses no row; the merger
 * runs only once the index has been quiet, driven by an injected clock and timers.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeConfig } from "../../../src/core/config.ts";
import { type EdgeDaemon, startEdgeDaemon } from "../../../src/edge/daemon.ts";
import { exportJsonlFile } from "../../../src/edge/export/export.ts";
import { importPath } from "../../../src/edge/export/import.ts";
import { startIndexMerger } from "../../../src/edge/index-merger.ts";
import { createSqliteStore } from "../../../src/edge/store/sqlite/index.ts";
import { MERGE_ABOVE_SEGMENTS } from "../../../src/edge/store/sqlite/index-merge.ts";
import type { EdgeStore } from "../../../src/edge/store/types.ts";
import { edgeAuth } from "../../helpers/harness.ts";

const dirs: string[] = [];
const stores: EdgeStore[] = [];
const daemons: EdgeDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-merge-"));
  dirs.push(dir);
  return dir;
}

function open(path = join(tempDir(), "edge.db")): EdgeStore {
  const s = createSqliteStore({ path, integrityCheck: false });
  stores.push(s);
  return s;
}

const WORDS = [
  "garden",
  "tomato",
  "bicycle",
  "harbour",
  "violin",
  "lantern",
  "granite",
  "pepper",
  "meadow",
  "copper",
  "orchid",
  "falcon",
  "saddle",
  "thunder",
  "walnut",
  "glacier",
];
/** Deterministic text: memory i names three of the words (each word in about 1 in 5 memories). */
const text = (i: number) =>
  `note ${i}: the ${WORDS[i % 16]} and the ${WORDS[(i * 7 + 3) % 16]} near the ${WORDS[(i * 11 + 5) % 16]}`;
const QUERIES = [...WORDS, "garden tomato", "violin lantern granite", "falcon near thunder", "note 17"];

/** Writes `n` memories one transaction each (as the daemon does per request). */
function writeEach(store: EdgeStore, from: number, n: number): void {
  for (let i = from; i < from + n; i++)
    store.create({ content: text(i), kind: "episodic", tags: [], metadata: {} });
}

const answers = (store: EdgeStore) =>
  QUERIES.map((q) => store.recall(q, 20).map((h) => [h.memory.id, h.score, h.snippet]));

/** FTS5's own check of the index against the table; throws on any difference. */
function ftsIntegrity(path: string): void {
  const db = new Database(path);
  try {
    db.run("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')");
  } finally {
    db.close();
  }
}

/** A store at `path` whose FTS5 merges nothing on its own: every write adds a segment, so the
 * count only grows (a deterministic many-segment index for the tests below). */
function openUnmerging(path: string): EdgeStore {
  open(path);
  stores.pop()?.close();
  const db = new Database(path);
  db.run("INSERT INTO memories_fts (memories_fts, rank) VALUES ('automerge', 0)");
  db.run("INSERT INTO memories_fts (memories_fts, rank) VALUES ('crisismerge', 1000)");
  db.close();
  return open(path);
}

function matches(path: string, word: string): number[] {
  const db = new Database(path, { readonly: true });
  try {
    return (
      db.query("SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rowid").all(word) as {
        rowid: number;
      }[]
    ).map((r) => r.rowid);
  } finally {
    db.close();
  }
}

describe("mergeIndex", () => {
  test("a store written one memory at a time has many segments; merged it has one and recalls the same", () => {
    const path = join(tempDir(), "edge.db");
    const store = open(path);
    expect(store.indexStats()).toMatchObject({ segments: 0, mergeWanted: false });
    writeEach(store, 0, 300);
    const before = store.indexStats();
    expect(before.segments).toBeGreaterThan(MERGE_ABOVE_SEGMENTS);
    expect(before.mergeWanted).toBe(true);
    const recalled = answers(store);
    const rows = WORDS.map((w) => matches(path, w));

    const r = store.mergeIndex();
    expect(r.done).toBe(true);
    expect(r.segmentsBefore).toBe(before.segments);
    expect(r.segments).toBe(1);
    expect(r.slices).toBeGreaterThan(0);
    expect(store.indexStats()).toMatchObject({ segments: 1, mergeWanted: false });
    expect(store.indexStats().version).not.toBe(before.version);
    expect(answers(store)).toEqual(recalled);
    expect(WORDS.map((w) => matches(path, w))).toEqual(rows);
    ftsIntegrity(path);

    // Nothing left to do: no slice, nothing written.
    const again = store.mergeIndex();
    expect(again).toMatchObject({ slices: 0, done: true, segments: 1 });
  });

  test("slice by slice, with writes between the slices, no row is lost and the index stays sound", () => {
    const path = join(tempDir(), "edge.db");
    const store = openUnmerging(path);
    writeEach(store, 0, 400);
    const segments = store.indexStats().segments;
    expect(segments).toBeGreaterThan(100);
    let slices = 0;
    let next = 400;
    for (let turn = 0; turn < 10_000; turn++) {
      // maxMs 0: exactly one slice per call.
      const r = store.mergeIndex({ maxMs: 0 });
      slices += r.slices;
      ftsIntegrity(path);
      if (r.done) break;
      expect(r.slices).toBe(1);
      // A write between two slices does not restart or disturb the merge.
      if (turn % 3 === 0) writeEach(store, next++, 1);
    }
    expect(slices).toBeGreaterThan(1);
    expect(store.indexStats().segments).toBeLessThan(segments);
    const live = store.countMemories();
    expect(live).toBe(next);
    // Every memory is still found by its own number, and by each of its words.
    for (const i of [0, 1, 199, 399, next - 1]) {
      const hits = store.recall(`note ${i}`, 50).map((h) => h.memory.content);
      expect(hits).toContain(text(i));
    }
    const db = new Database(path, { readonly: true });
    for (const [k, w] of WORDS.entries()) {
      const expected = (
        db
          .query("SELECT count(*) AS n FROM memories WHERE deleted = 0 AND content LIKE ?")
          .get(`% ${w}%`) as {
          n: number;
        }
      ).n;
      expect({ w, n: matches(path, w).length }).toEqual({ w: WORDS[k]!, n: expected });
    }
    db.close();
    ftsIntegrity(path);
  });

  test("few segments: nothing to do unless forced (the end of an import)", () => {
    const path = join(tempDir(), "edge.db");
    const store = open(path);
    writeEach(store, 0, 3);
    const s = store.indexStats();
    expect(s.segments).toBeGreaterThan(1);
    expect(s.segments).toBeLessThanOrEqual(MERGE_ABOVE_SEGMENTS);
    expect(store.mergeIndex()).toMatchObject({ slices: 0, done: true, segments: s.segments });
    expect(store.mergeIndex({ force: true })).toMatchObject({ done: true, segments: 1 });
    ftsIntegrity(path);
  });

  test("an import that wrote enough merges the index at its end; a small one or one that wrote nothing does not", async () => {
    const src = open();
    writeEach(src, 0, 120);
    const file = join(tempDir(), "export.jsonl");
    await exportJsonlFile(src, src.deviceId, file, {});
    const opts = { maxContentBytes: 1 << 20, now: Date.now, onProblem: () => {} };

    const small = open();
    writeEach(small, 1000, 12);
    const sumSmall = await importPath(small, file, { ...opts, mergeIndexAfter: 121 });
    expect(sumSmall.created).toBe(120);
    expect(sumSmall.index).toBeUndefined();
    expect(small.indexStats().segments).toBeGreaterThan(1);

    const path = join(tempDir(), "edge.db");
    const dst = open(path);
    writeEach(dst, 1000, 12);
    expect(dst.indexStats().segments).toBeGreaterThan(1);
    const sum = await importPath(dst, file, { ...opts, mergeIndexAfter: 120 });
    expect(sum.created).toBe(120);
    expect(sum.index).toMatchObject({ segments: 1 });
    expect(dst.indexStats().segments).toBe(1);
    ftsIntegrity(path);
    const again = await importPath(dst, file, { ...opts, mergeIndexAfter: 1 });
    expect(again.unchanged).toBe(120);
    expect(again.index).toBeUndefined();
  });
});

/** Timers the test fires by hand, and a clock it moves. */
function manualTime() {
  let now = 1_000_000;
  const pending: { fn: () => void; ms: number }[] = [];
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
    },
    setTimer: (fn: () => void, ms: number) => {
      const t = { fn, ms };
      pending.push(t);
      return t;
    },
    clearTimer: (h: unknown) => {
      const i = pending.indexOf(h as { fn: () => void; ms: number });
      if (i >= 0) pending.splice(i, 1);
    },
    /** Moves the clock to the next timer and fires it; returns its delay. */
    fire(): number {
      const t = pending.shift();
      if (!t) throw new Error("no timer pending");
      now += t.ms;
      t.fn();
      return t.ms;
    },
    get pending() {
      return pending.length;
    },
  };
}

describe("the idle merger", () => {
  test("waits until the index has been quiet for idleMs, then merges in turns and logs it", () => {
    const path = join(tempDir(), "edge.db");
    const store = open(path);
    const time = manualTime();
    const events: Record<string, unknown>[] = [];
    const merger = startIndexMerger({
      store,
      now: time.now,
      setTimer: time.setTimer,
      clearTimer: time.clearTimer,
      idleMs: 5000,
      pollMs: 1000,
      turnMs: 0,
      gapMs: 10,
      log: (e) => events.push(e),
    });
    writeEach(store, 0, 300);
    expect(store.indexStats().segments).toBeGreaterThan(MERGE_ABOVE_SEGMENTS);

    // Writes keep coming: every poll sees a changed index and does not merge.
    for (let i = 0; i < 8; i++) {
      writeEach(store, 300 + i, 1);
      expect(time.fire()).toBe(1000);
    }
    expect(store.indexStats().segments).toBeGreaterThan(MERGE_ABOVE_SEGMENTS);
    expect(events).toEqual([]);
    const recalled = answers(store);

    // Quiet: after 5 s without a change, turns of one slice each follow each other until done.
    let turns = 0;
    for (let i = 0; i < 10_000 && events.length === 0; i++) if (time.fire() === 10) turns++;
    expect(turns).toBeGreaterThan(0);
    expect(store.indexStats()).toMatchObject({ segments: 1, mergeWanted: false });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ level: "debug", event: "index_merged", segments: 1 });
    expect(events[0]!.segments_before).toBeGreaterThan(MERGE_ABOVE_SEGMENTS);
    expect(events[0]!.slices).toBeGreaterThan(1);
    expect(answers(store)).toEqual(recalled);
    ftsIntegrity(path);

    // Merged and quiet: polls change nothing.
    const version = store.indexStats().version;
    for (let i = 0; i < 5; i++) expect(time.fire()).toBe(1000);
    expect(store.indexStats().version).toBe(version);
    merger.stop();
    expect(time.pending).toBe(0);
  });

  test("a store written without pause is merged once the merge has waited maxWaitMs", () => {
    const path = join(tempDir(), "edge.db");
    const store = openUnmerging(path);
    const time = manualTime();
    startIndexMerger({
      store,
      now: time.now,
      setTimer: time.setTimer,
      clearTimer: time.clearTimer,
      idleMs: 5000,
      pollMs: 1000,
      maxWaitMs: 20_000,
      turnMs: 1_000_000,
    }).step();
    writeEach(store, 0, 20);
    let polls = 0;
    while (store.indexStats().mergeWanted && polls < 100) {
      writeEach(store, 1000 + polls, 1);
      time.fire();
      polls++;
    }
    // Wanted from the first poll on; merged at the poll 20 s later, writes notwithstanding.
    expect(polls).toBe(21);
    expect(store.indexStats().segments).toBeLessThanOrEqual(2);
  });

  test("the daemon runs it: writes through the daemon's store, then idle polls merge the index", async () => {
    const dir = tempDir();
    const time = manualTime();
    const d = await startEdgeDaemon({
      config: EdgeConfig.parse({ data_dir: dir, port: 0 }),
      integrityCheck: false,
      indexMerge: { now: time.now, setTimer: time.setTimer, clearTimer: time.clearTimer },
    });
    daemons.push(d);
    writeEach(d.store, 0, 300);
    expect(d.store.indexStats().mergeWanted).toBe(true);
    // Recalls keep coming (health checks do not count): no merge while the API is busy.
    const version = d.store.indexStats().version;
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${d.url}/v1/recall`, {
        method: "POST",
        headers: edgeAuth(dir, { "Content-Type": "application/json" }),
        body: JSON.stringify({ query: "garden tomato", limit: 5 }),
      });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      time.fire();
    }
    expect(d.store.indexStats().version).toBe(version);
    // Quiet: merged.
    for (let i = 0; i < 10_000 && d.store.indexStats().mergeWanted; i++) {
      if (i % 50 === 0) await (await fetch(`${d.url}/health`)).arrayBuffer();
      time.fire();
    }
    expect(d.store.indexStats().segments).toBe(1);
    await d.stop();
    daemons.splice(0);
    expect(time.pending).toBe(0);
  });
});

describe("the idle merger gives memories their vectors", () => {
  const withVector = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return (
        db
          .query(
            "SELECT count(*) AS n FROM memory_vectors v JOIN memories m ON m.rid = v.rid WHERE m.deleted = 0",
          )
          .get() as { n: number }
      ).n;
    } finally {
      db.close();
    }
  };

  test("after the merge, quiet turns embed every memory without a vector, once; a later write is embedded too", () => {
    const path = join(tempDir(), "edge.db");
    const store = open(path);
    const time = manualTime();
    const events: Record<string, unknown>[] = [];
    const merger = startIndexMerger({
      store,
      now: time.now,
      setTimer: time.setTimer,
      clearTimer: time.clearTimer,
      idleMs: 5000,
      pollMs: 1000,
      embed: (maxMs) => store.embedPending(maxMs),
      // No time at all: one batch (200) a turn, so that the turns can be counted.
      embedTurnMs: 0,
      log: (e) => events.push(e),
    });
    writeEach(store, 0, 450);
    expect(withVector(path)).toBe(0);
    // Not before the quiet time.
    for (let i = 0; i < 4; i++) time.fire();
    expect(withVector(path)).toBe(0);
    for (let i = 0; i < 10_000 && !events.some((e) => e.event === "vectors_embedded"); i++) time.fire();
    expect(withVector(path)).toBe(450);
    expect(events.find((e) => e.event === "vectors_embedded")).toMatchObject({
      level: "debug",
      memories: 450,
    });
    // Done: quiet polls do not look again.
    const embedded = events.length;
    for (let i = 0; i < 20; i++) time.fire();
    expect(events.length).toBe(embedded);
    // A write changes the index: its memory gets its vector at the next quiet time.
    writeEach(store, 450, 1);
    for (let i = 0; i < 20; i++) time.fire();
    expect(withVector(path)).toBe(451);
    merger.stop();
  });
});
