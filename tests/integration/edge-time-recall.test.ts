/**
 * Time in questions on the edge store (real SQLite): a window read from the query
 * (core/time-query.ts) boosts or filters recall by `occurred_at`, else `created_at`, in keyword,
 * semantic and hybrid mode; a window no memory falls in changes nothing.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readTime, type TimeRecall, timeRecall } from "../../src/core/time-query.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore, LocalRecallMode } from "../../src/edge/store/types.ts";

/** The store's clock: memories without occurred_at were written on 30 November 2026. */
const NOW = Date.parse("2026-11-30T10:00:00.000Z");
let dir: string;
let store: EdgeStore;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dionysus-time-"));
  store = createSqliteStore({ path: join(dir, "edge.db"), now: () => NOW });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const add = (content: string, occurred_at?: string) =>
  store.create({
    content,
    kind: "episodic",
    tags: [],
    metadata: {},
    ...(occurred_at ? { occurred_at } : {}),
  });

/** The time `query` names, read on `NOW`, as the store takes it. */
function time(query: string, use: "boost" | "filter"): TimeRecall {
  const t = timeRecall(readTime(query, new Date(NOW)), use);
  if (!t) throw new Error(`no time in ${query}`);
  return t;
}

const MODES: LocalRecallMode[] = ["keyword", "semantic", "hybrid"];

describe("time in recall on the edge store", () => {
  let strong: string;
  let dated: string;
  beforeEach(() => {
    // The best keyword match is from March 2023; the memory of the day asked about ranks lower.
    strong = add("Nate likes to make coconut ice cream; Nate will make it again", "2023-03-01T12:00:00Z").id;
    dated = add("Nate: I make a coconut dish for dinner", "2022-11-09T18:30:00+01:00").id;
    add("Joanna wrote a screenplay about a dish", "2022-11-20T10:00:00Z");
    add("Joanna made pancakes this morning");
  });

  test.each(MODES)("%s: boost ranks the memory of that day first; off does not", (mode) => {
    const q = "What did Nate make on 9 November, 2022?";
    const boosted = store.recall(q, 5, undefined, mode, time(q, "boost"));
    expect(boosted[0]?.memory.id).toBe(dated);
    expect(boosted.map((h) => h.memory.id)).toContain(strong);
    if (mode !== "semantic") {
      const off = store.recall(q, 5, undefined, mode);
      expect(off[0]?.memory.id).toBe(strong);
    }
  });

  test.each(MODES)("%s: filter keeps only the window's memories", (mode) => {
    const q = "What did Nate make in November 2022?";
    const hits = store.recall(q, 10, undefined, mode, time(q, "filter"));
    expect(hits.length).toBeGreaterThan(0);
    for (const h of hits) {
      const at = Date.parse(h.memory.occurred_at ?? h.memory.created_at);
      expect(at >= Date.parse("2022-11-01T00:00:00Z") && at < Date.parse("2022-12-01T00:00:00Z")).toBe(true);
    }
    expect(hits.map((h) => h.memory.id)).toContain(dated);
  });

  test.each(MODES)("%s: a window no memory falls in changes nothing", (mode) => {
    const q = "What did Nate make on 9 November, 2019?";
    const plain = store.recall(q, 5, undefined, mode);
    expect(plain.length).toBeGreaterThan(0);
    expect(store.recall(q, 5, undefined, mode, time(q, "boost"))).toEqual(plain);
  });

  test("occurred_at with an offset is read as an instant (18:30+01:00 is 17:30 UTC, still the 9th)", () => {
    const hits = store.recall("coconut", 5, undefined, "keyword", {
      use: "filter",
      window: { since: "2022-11-09T17:30:00.000Z", until: "2022-11-09T17:30:00.001Z" },
      rest: "coconut",
    });
    expect(hits.map((h) => h.memory.id)).toEqual([dated]);
  });

  test("a memory without occurred_at is placed by created_at", () => {
    const q = "What pancakes today?";
    const hits = store.recall(q, 5, undefined, "keyword", time(q, "filter"));
    expect(hits.map((h) => h.memory.content)).toEqual(["Joanna made pancakes this morning"]);
  });

  test("a time phrase alone answers the window's newest memories", () => {
    const q = "November 2022";
    expect(
      store.recall(q, 5, undefined, "keyword", time(q, "filter")).map((h) => h.memory.occurred_at),
    ).toEqual(["2022-11-20T10:00:00Z", "2022-11-09T18:30:00+01:00"]);
    expect(store.recall(q, 5, undefined, "keyword", time(q, "boost")).map((h) => h.memory.id)).toContain(
      dated,
    );
  });

  test("the window narrows together with the filter", () => {
    const q = "What did Nate make on 9 November, 2022?";
    expect(store.recall(q, 5, { kind: "identity" }, "keyword", time(q, "filter"))).toEqual([]);
  });
});

test("on a large store the window's memory is a candidate even when hundreds rank above it", () => {
  for (let i = 0; i < 300; i++) add(`coconut coconut market stall ${i}`, "2024-01-01T00:00:00Z");
  const dated = add("a coconut at the market", "2022-11-09T12:00:00Z").id;
  const q = "coconut market on 9 November 2022";
  const plain = store.recall(q, 10, undefined, "keyword");
  expect(plain.map((h) => h.memory.id)).not.toContain(dated);
  const boosted = store.recall(q, 10, undefined, "keyword", time(q, "boost"));
  expect(boosted.map((h) => h.memory.id)).toContain(dated);
  const filtered = store.recall(q, 10, undefined, "keyword", time(q, "filter"));
  expect(filtered.map((h) => h.memory.id)).toEqual([dated]);
});

describe("a window that is a large share of the store (boosted within one deeper ranking)", () => {
  test("a year holding a third of the memories: its memories come first, best match first, as filter ranks them", () => {
    // 300 memories over three years, every one matching the words with a different strength.
    const ids2023: string[] = [];
    for (let i = 0; i < 300; i++) {
      const year = 2021 + (i % 3);
      const m = add(
        `garden note ${i}: ${"tomatoes ".repeat(1 + (i % 4))}in the garden`,
        `${year}-06-${String(1 + (i % 28)).padStart(2, "0")}T12:00:00Z`,
      );
      if (year === 2023) ids2023.push(m.id);
    }
    const q = "tomatoes in the garden in 2023";
    const boosted = store.recall(q, 10, undefined, "keyword", time(q, "boost"));
    const filtered = store.recall(q, 10, undefined, "keyword", time(q, "filter"));
    expect(boosted).toHaveLength(10);
    expect(boosted.every((h) => ids2023.includes(h.memory.id))).toBe(true);
    expect(boosted.map((h) => h.memory.id)).toEqual(filtered.map((h) => h.memory.id));
    expect(boosted[0]?.snippet).toContain("**tomatoes**");
  });
});
