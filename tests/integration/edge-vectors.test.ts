/**
 * The edge's vector search (src/edge/store/sqlite/vectors.ts) on a real SQLite file: scoring only
 * given memories (hybrid recall's prefilter on a large store) ranks them exactly as the full scan
 * ranks them, and ignores rowids that have no vector; its in-memory copy of the vectors follows
 * every change to them.
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

test("searchAmong ranks the given memories as the full scan does, skipping unknown rowids and embedding missing vectors", () => {
  const { ctx, memories, vectors } = open();
  for (const content of TEXTS) memories.create({ content, kind: "episodic", tags: [], metadata: {} });
  const rids = (ctx.db.query("SELECT rid FROM memories ORDER BY rid").all() as { rid: number }[]).map(
    (r) => r.rid,
  );
  const full = vectors.search("my pet dog", TEXTS.length);
  expect(full).toHaveLength(TEXTS.length);
  // All of them, plus a rowid that does not exist: the same order and scores as the full scan.
  const among = vectors.searchAmong("my pet dog", TEXTS.length, [...rids].reverse().concat(9999));
  expect(among.map((h) => h.r)).toEqual(full.map((h) => h.r));
  for (const [i, h] of among.entries()) expect(h.score).toBeCloseTo(full[i]!.score, 5);
  // A subset: the full scan's order restricted to it, cut at k.
  const some = [rids[0]!, rids[1]!, rids[3]!];
  const expected = full.filter((h) => some.includes(h.r)).slice(0, 2);
  expect(vectors.searchAmong("my pet dog", 2, some).map((h) => h.r)).toEqual(expected.map((h) => h.r));
  expect(expected[0]!.r).toBe(rids[3]!); // "The dog loves running…" is the closest of the three
  expect(vectors.searchAmong("my pet dog", 0, rids)).toEqual([]);
  // A memory without a vector yet (written after the last scan) is embedded on the way and stored.
  const late = memories.create({ content: "Our dog chased a cat", kind: "episodic", tags: [], metadata: {} });
  const lateRid = (ctx.db.query("SELECT rid FROM memories WHERE id = ?").get(late.id) as { rid: number }).rid;
  expect(ctx.db.query("SELECT count(*) AS n FROM memory_vectors WHERE rid = ?").get(lateRid)).toEqual({
    n: 0,
  });
  expect(vectors.searchAmong("my pet dog", 1, [lateRid, rids[2]!])[0]?.r).toBe(lateRid);
  expect(ctx.db.query("SELECT count(*) AS n FROM memory_vectors WHERE rid = ?").get(lateRid)).toEqual({
    n: 1,
  });
  ctx.db.close();
});

test("keyword and hybrid recall: a memory that names the person asked about ranks above one that only repeats the other words", () => {
  const { ctx, memories } = open();
  const add = (content: string) => memories.create({ content, kind: "episodic", tags: [], metadata: {} }).id;
  const ben = add("Ben: I went hiking in the mountains");
  const ana = add("Ana: I went hiking");
  for (let i = 0; i < 20; i++) add(`Ana: note ${i} about the weather and the garden`);
  const hybrid = memories.recall("Where did Ana go hiking in the mountains?", 5, undefined, "hybrid");
  expect(hybrid[0]?.memory.id).toBe(ana);
  expect(hybrid.map((h) => h.memory.id)).toContain(ben);
  // Keyword recall too (it re-ranks twice the page), with the snippet of the words found.
  const keyword = memories.recall("Where did Ana go hiking in the mountains?", 2);
  expect(keyword.map((h) => h.memory.id)).toEqual([ana, ben]);
  expect(keyword[0]?.snippet).toContain("**hiking**");
  // Without a name (lower-case), plain bm25: the memory with more of the words wins.
  expect(memories.recall("where did ana go hiking in the mountains?", 1)[0]?.memory.id).toBe(ben);
  ctx.db.close();
});

test("searchAmong's in-memory vectors follow updates, deletes, re-embedding and another connection's writes", () => {
  const { ctx, memories, vectors } = open();
  const ids = TEXTS.map(
    (content) => memories.create({ content, kind: "episodic", tags: [], metadata: {} }).id,
  );
  const ridOf = (id: string) =>
    (ctx.db.query("SELECT rid FROM memories WHERE id = ?").get(id) as { rid: number }).rid;
  const rids = ids.map(ridOf);
  const among = (text: string) => vectors.searchAmong(text, TEXTS.length, rids).map((h) => h.r);
  const full = (text: string) => vectors.search(text, TEXTS.length).map((h) => h.r);
  // Fills the cache with every vector; "violin" is the sister's, not the dog's.
  expect(among("my pet dog")).toEqual(full("my pet dog"));
  const violin = rids[2]!;
  expect(among("my pet dog")[0]).not.toBe(violin);

  // This connection changes a content: its vector is dropped (trigger) and the cache forgets it.
  memories.update(ids[2]!, { content: "My dog sleeps on the sofa with the puppy" });
  expect(among("my pet dog")[0]).toBe(violin);
  expect(among("my pet dog")).toEqual(full("my pet dog"));

  // A delete: the memory is no longer scored.
  memories.delete(ids[2]!);
  expect(among("my pet dog")).not.toContain(violin);
  expect(among("my pet dog")).toEqual(full("my pet dog"));

  // A vector rewritten in the table (as a re-embedding does) is read again.
  const beach = rids[3]!;
  const flowerPot = (
    ctx.db.query("SELECT vector FROM memory_vectors WHERE rid = ?").get(rids[0]!) as {
      vector: Uint8Array;
    }
  ).vector;
  ctx.db.query("UPDATE memory_vectors SET vector = ? WHERE rid = ?").run(flowerPot, beach);
  const pot = vectors.searchAmong("spare key under the flower pot", 2, rids);
  expect(pot.map((h) => h.r).sort()).toEqual([rids[0]!, beach].sort());
  expect(pot[0]!.score).toBeCloseTo(pot[1]!.score, 6);

  // Another connection's commit (the CLI while the daemon runs): the cache is filled again.
  const other = new SqliteContext({ path: ctx.path, integrityCheck: false });
  sqliteMemories(other).update(ids[4]!, { content: "Our puppy and the dog play fetch in the park" });
  sqliteVectors(other).search("dog", 1); // embeds and stores its vector from that connection
  other.db.close();
  const dinner = rids[4]!;
  expect(among("my pet dog")[0]).toBe(dinner);

  // A memory removed for good (eviction: the vector goes by cascade) whose rowid a new memory
  // then takes (the largest rowid is reused): the new content's vector is the one scored.
  const last = rids.at(-1)!;
  expect(among("sunset over the lake")[0]).toBe(last);
  ctx.db.query("DELETE FROM memories WHERE rid = ?").run(last);
  const reused = memories.create({ content: "A puppy and a dog", kind: "episodic", tags: [], metadata: {} });
  expect(ridOf(reused.id)).toBe(last);
  expect(among("sunset over the lake")).toEqual(full("sunset over the lake"));
  expect(among("sunset over the lake")[0]).not.toBe(last);
  expect(among("my pet dog")).toEqual(full("my pet dog"));
  ctx.db.close();
});

const noteOf = (content: string) => ({ content, kind: "episodic" as const, tags: [], metadata: {} });

test("embedPending gives every live memory a vector in slices, skips deleted ones, and then has nothing left", () => {
  const { ctx, memories } = open();
  const made = Array.from({ length: 450 }, (_, i) =>
    memories.create(noteOf(`${TEXTS[i % TEXTS.length]} ${i}`)),
  );
  memories.delete(made[0]!.id);
  const withVector = () =>
    (
      ctx
        .q("SELECT count(*) AS n FROM memory_vectors v JOIN memories m ON m.rid = v.rid WHERE m.deleted = 0")
        .get() as { n: number }
    ).n;
  expect(withVector()).toBe(0);
  // No time at all: one batch, not done.
  const first = memories.embedPending(0);
  expect(first).toEqual({ embedded: 200, done: false });
  expect(withVector()).toBe(200);
  const rest = memories.embedPending(60_000);
  expect(rest).toEqual({ embedded: 249, done: true });
  expect(withVector()).toBe(449);
  expect(memories.embedPending(60_000)).toEqual({ embedded: 0, done: true });
  // A write leaves one to do; semantic recall finds the memories by their stored vectors.
  const late = memories.create(noteOf("Grandpa repaired the rusty tractor engine in the barn"));
  expect(memories.embedPending(60_000)).toEqual({ embedded: 1, done: true });
  expect(
    memories.recall("tractor engine repair", 3, undefined, "semantic").map((h) => h.memory.id),
  ).toContain(late.id);
});
