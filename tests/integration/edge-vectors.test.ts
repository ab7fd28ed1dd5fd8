/**
 * The edge's vector search (src/edge/store/sqlite/vectors.ts) on a real SQLite file: scoring only
 * given memories (hybrid recall's prefilter on a large store) ranks them exactly as the full scan
 * ranks them, and ignores rowids that have no vector.
 */
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteContext } from "../../src/edge/store/sqlite/context.ts";
import { sqliteMemories } from "../../src/edge/store/sqlite/memories.ts";
import { sqliteVectors } from "../../src/edge/store/sqlite/vectors.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function open() {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-vectors-"));
  dirs.push(dir);
  const ctx = new SqliteContext({ path: join(dir, "edge.db") });
  return { ctx, memories: sqliteMemories(ctx), vectors: sqliteVectors(ctx) };
}

const TEXTS = [
  "The spare key is under the blue flower pot",
  "We adopted a puppy named Biscuit last spring",
  "My sister plays the violin in an orchestra",
  "The dog loves running on the beach",
  "Dinner with friends at the Italian restaurant",
  "I painted a sunset over the lake",
];

test("searchAmong ranks the given memories as the full scan does, skipping unknown rowids", () => {
  const { ctx, memories, vectors } = open();
  for (const content of TEXTS) memories.create({ content, kind: "episodic", tags: [], metadata: {} });
  expect(vectors.size()).toBe(TEXTS.length);
  const rids = (ctx.db.query("SELECT rid FROM memories ORDER BY rid").all() as { rid: number }[]).map(
    (r) => r.rid,
  );
  const full = vectors.search("my pet dog", TEXTS.length);
  expect(full).toHaveLength(TEXTS.length);
  // All of them, plus a rowid that does not exist: the same order and scores as the full scan.
  expect(vectors.searchAmong("my pet dog", TEXTS.length, [...rids].reverse().concat(9999))).toEqual(full);
  // A subset: the full scan's order restricted to it, cut at k.
  const some = [rids[0]!, rids[1]!, rids[3]!];
  const expected = full.filter((h) => some.includes(h.r)).slice(0, 2);
  expect(vectors.searchAmong("my pet dog", 2, some)).toEqual(expected);
  expect(expected[0]!.r).toBe(rids[3]!); // "The dog loves running…" is the closest of the three
  expect(vectors.searchAmong("my pet dog", 0, rids)).toEqual([]);
  ctx.db.close();
});
