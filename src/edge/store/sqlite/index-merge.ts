/**
 * Merging the keyword index (FTS5 `memories_fts`). FTS5 keeps its index as segments (b-trees):
 * each transaction that writes a memory adds a small one, and `automerge` only merges a level
 * once it holds four, so a store written one memory at a time keeps ten to twenty segments, and
 * every recall looks each query word up in each of them. Merged into one segment the index is
 * also smaller and its lists contiguous: bench:recall measures the difference.
 *
 * A full merge rewrites the whole index (about 1 s at 100,000 memories), so it runs in slices:
 * the first `'merge'` command with a negative page count puts every segment on one level and
 * starts merging them; the following ones, with a positive count, continue that merge (new
 * segments written meanwhile do not restart it). A slice that changed fewer than two rows did no
 * work: the merge is finished (the FTS5 documentation's rule). Each slice is its own `BEGIN
 * IMMEDIATE` transaction, so a write or a recall waits for one slice at most.
 *
 * How many segments the index has is read from FTS5's structure record (row 10 of
 * `memories_fts_data`): a 4-byte cookie, the 4-byte marker `ff 00 00 01` in the version-2
 * format, then varints: levels, segments, ...
 */
import type { IndexMergeOptions, IndexMergeResult, IndexStats, IndexUpkeep } from "../types.ts";
import type { SqliteContext } from "./context.ts";

/** The index is merged once it holds more segments than this: a few small segments beside a
 * large one cost recall little, and each full merge rewrites the whole index. */
export const MERGE_ABOVE_SEGMENTS = 8;
/** Leaf pages (about 4 KB each) written per slice: p50 about 5 ms, p95 about 20 ms at 100,000
 * memories on a loaded machine (64 pages: 12 and 35–55 ms). */
export const PAGES_PER_SLICE = 16;

const STRUCTURE_ROWID = 10;

/** A varint of FTS5 (SQLite's record varint: 7 bits a byte, big-endian; the 9th byte has 8). */
function varint(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let i = at;
  for (let k = 0; k < 8; k++) {
    const x = b[i++];
    if (x === undefined) throw new Error("truncated FTS5 structure record");
    v = v * 128 + (x & 0x7f);
    if ((x & 0x80) === 0) return [v, i];
  }
  return [v * 256 + (b[i++] ?? 0), i];
}

/** Levels and segments of an FTS5 structure record. */
export function parseStructure(block: Uint8Array): { levels: number; segments: number } {
  let at = 4;
  if (block[4] === 0xff && block[5] === 0x00 && block[6] === 0x00 && block[7] === 0x01) at = 8;
  const [levels, next] = varint(block, at);
  const [segments] = varint(block, next);
  return { levels, segments };
}

export function sqliteIndexUpkeep(ctx: SqliteContext): IndexUpkeep {
  const { q, guard, write } = ctx;
  /** A full merge this store started (with a negative count) and has not seen finish. */
  let merging = false;

  function structure(): { segments: number; version: string } {
    const row = q("SELECT block FROM memories_fts_data WHERE id = ?").get(STRUCTURE_ROWID) as {
      block: Uint8Array;
    } | null;
    // A new table has no structure record until its first write.
    if (!row) return { segments: 0, version: "" };
    return {
      segments: parseStructure(row.block).segments,
      version: Buffer.from(row.block).toString("base64"),
    };
  }

  const wanted = (segments: number) => merging || segments > MERGE_ABOVE_SEGMENTS;

  function indexStats(): IndexStats {
    const s = guard(structure);
    return { segments: s.segments, mergeWanted: wanted(s.segments), version: s.version };
  }

  function mergeIndex(opts: IndexMergeOptions = {}): IndexMergeResult {
    const started = performance.now();
    const segmentsBefore = guard(structure).segments;
    const result: IndexMergeResult = {
      slices: 0,
      pages: 0,
      done: true,
      segmentsBefore,
      segments: segmentsBefore,
      ms: 0,
      maxSliceMs: 0,
    };
    if (!wanted(segmentsBefore) && !(opts.force && segmentsBefore > 1)) return result;
    const changes = q("SELECT total_changes() AS n");
    const merge = q("INSERT INTO memories_fts (memories_fts, rank) VALUES ('merge', ?)");
    for (;;) {
      const t0 = performance.now();
      const worked = write(() => {
        const before = (changes.get() as { n: number }).n;
        merge.run(merging ? PAGES_PER_SLICE : -PAGES_PER_SLICE);
        return (changes.get() as { n: number }).n - before >= 2;
      });
      const t1 = performance.now();
      result.slices++;
      result.maxSliceMs = Math.max(result.maxSliceMs, t1 - t0);
      merging = worked;
      if (!worked) break;
      result.pages += PAGES_PER_SLICE;
      if (opts.maxMs !== undefined && t1 - started >= opts.maxMs) break;
    }
    result.done = !merging;
    result.segments = guard(structure).segments;
    result.ms = performance.now() - started;
    return result;
  }

  return { indexStats, mergeIndex };
}
