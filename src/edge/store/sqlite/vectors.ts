/**
 * Semantic recall on the device, so that `mode: semantic|hybrid` works offline. Every live memory
 * gets a vector from the built-in word-vector embedder (src/core/embedding, the VPS's default
 * too), stored as 100 int8 values in `memory_vectors` with the embedder's id. A trigger drops the
 * vector when the content changes or the memory is deleted; the next semantic recall embeds the
 * memories without a current vector (about 0.3 ms each, so a recall after a write embeds only
 * that write) and stores them, best effort: a recall never fails because another process holds
 * the write lock.
 *
 * The search is an exact scan: the query's vector against every stored one. The vectors are kept
 * in memory as one float32 matrix (40 MB for 100,000 memories), rebuilt when the database changed:
 * this connection's `total_changes()` or `PRAGMA data_version` (another process's commit) moved.
 * `searchAmong` scores only given memories (hybrid recall's keyword candidates on a large store: a
 * full scan of 100,000 vectors costs 11–30 ms, more than a recall may take, and the matrix would
 * be rebuilt after every write, about 0.5 s, and hold 40 MB). Their vectors come from a packed
 * int8 copy kept in memory (vector-cache.ts, 10 MB for 100,000 memories) that follows every change
 * without a rebuild; it replaced reading the candidates' rows from the table (2.5 ms of a recall).
 */
import { wordVectorEmbed } from "../../../core/embedding/word-vector-embedder.ts";
import { WORD_VECTOR_DIMENSIONS } from "../../../core/embedding/word-vectors.data.ts";
import type { SqliteContext } from "./context.ts";
import { VectorCache } from "./vector-cache.ts";

/** The embedder the stored vectors come from; a vector from another one counts as missing. */
export const EDGE_EMBEDDER_ID = `builtin-words-v1/${WORD_VECTOR_DIMENSIONS}`;
/** 100: the scan below reads 4 numbers at a time. */
const DIMS = WORD_VECTOR_DIMENSIONS;
/** Memories embedded per write transaction. */
const EMBED_BATCH = 2000;
/** Memories embedded per write transaction in the background (short, so that a write or a
 * recall arriving meanwhile waits little). */
const PENDING_BATCH = 200;

export interface VectorHit {
  /** The memory's rowid. */
  r: number;
  /** Cosine similarity with the query. */
  score: number;
}

/** A unit vector as int8 (x · 127, rounded). */
export function quantize(v: readonly number[]): Uint8Array {
  const out = new Int8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.max(-127, Math.min(127, Math.round(v[i]! * 127)));
  return new Uint8Array(out.buffer);
}

interface Matrix {
  key: string;
  rids: Int32Array;
  /** The vectors as float32, row after row: 4 times the bytes of int8, but the scan runs about
   * 4 times faster (measured: 15 against 60 ms for 100,000 vectors). */
  values: Float32Array;
}

export function sqliteVectors(ctx: SqliteContext) {
  const { q } = ctx;
  let matrix: Matrix | undefined;
  const cache = new VectorCache(ctx, EDGE_EMBEDDER_ID, DIMS);

  const changeKey = () => {
    const dv = (q("PRAGMA data_version").get() as { data_version: number }).data_version;
    const tc = (q("SELECT total_changes() AS n").get() as { n: number }).n;
    return `${dv}/${tc}`;
  };

  /** Stores vectors for memories whose content is still the one embedded; best effort: returns
   * how many were stored, or -1 when the write failed (another process holds the lock; the next
   * recall tries again). */
  function store(rows: readonly { rid: number; content: string; vector: Uint8Array }[]): number {
    let stored = 0;
    try {
      ctx.write(() => {
        const put = q(
          `INSERT INTO memory_vectors (rid, model, vector) VALUES (?, ?, ?)
           ON CONFLICT (rid) DO UPDATE SET model = excluded.model, vector = excluded.vector`,
        );
        // Only rows still live with the content embedded (another process may have changed it).
        const still = q("SELECT 1 FROM memories WHERE rid = ? AND deleted = 0 AND content = ?");
        for (const r of rows) {
          if (!still.get(r.rid, r.content)) continue;
          put.run(r.rid, EDGE_EMBEDDER_ID, r.vector);
          stored++;
        }
      });
    } catch {
      return -1;
    }
    return stored;
  }

  /** Embeds live memories without a current vector, `batch` per write transaction, for about
   * `maxMs` (at least one batch). The daemon runs it while idle in short turns (PENDING_BATCH),
   * so that the first semantic recall after an import or an upgrade does not embed them all; a
   * vector recall runs it to the end (EMBED_BATCH, so it never holds every memory's content at
   * once). Stops early when nothing could be stored (another process holds the write lock). */
  function embedPending(
    maxMs: number,
    batch: number = PENDING_BATCH,
    now: () => number = performance.now.bind(performance),
  ) {
    const started = now();
    let embedded = 0;
    for (;;) {
      const missing = q(
        `SELECT m.rid AS rid, m.content AS content FROM memories m
         LEFT JOIN memory_vectors v ON v.rid = m.rid AND v.model = ?
         WHERE m.deleted = 0 AND v.rid IS NULL LIMIT ?`,
      ).all(EDGE_EMBEDDER_ID, batch) as { rid: number; content: string }[];
      if (missing.length === 0) return { embedded, done: true };
      const stored = store(missing.map((m) => ({ ...m, vector: quantize(wordVectorEmbed(m.content)) })));
      if (stored <= 0) return { embedded, done: false };
      embedded += stored;
      if (missing.length < batch) return { embedded, done: true };
      if (now() - started >= maxMs) return { embedded, done: false };
    }
  }

  function load(): Matrix {
    // Nothing changed since the matrix was built: no memory can be missing its vector.
    if (matrix?.key === changeKey()) return matrix;
    embedPending(Number.POSITIVE_INFINITY, EMBED_BATCH);
    const key = changeKey();
    const rows = q(
      `SELECT v.rid AS rid, v.vector AS vector FROM memory_vectors v JOIN memories m ON m.rid = v.rid
       WHERE m.deleted = 0 AND v.model = ?`,
    ).all(EDGE_EMBEDDER_ID) as { rid: number; vector: Uint8Array }[];
    const rids = new Int32Array(rows.length);
    const values = new Float32Array(rows.length * DIMS);
    rows.forEach((row, i) => {
      rids[i] = row.rid;
      const v = new Int8Array(row.vector.buffer, row.vector.byteOffset, DIMS);
      for (let d = 0; d < DIMS; d++) values[i * DIMS + d] = v[d]! / 127;
    });
    matrix = { key, rids, values };
    return matrix;
  }

  /** The query's vector, or undefined when it has none (no known word). */
  function queryVector(text: string): Float32Array | undefined {
    const query = Float32Array.from(wordVectorEmbed(text));
    return query.every((x) => x === 0) ? undefined : query;
  }

  /** Cosine of row `i` of `values` with `query` (both unit vectors). Four partial sums: the loop
   * runs about 4 times faster than one running sum. */
  function dot(values: Float32Array, i: number, query: Float32Array): number {
    let b = i * DIMS;
    let d0 = 0;
    let d1 = 0;
    let d2 = 0;
    let d3 = 0;
    for (let d = 0; d < DIMS; d += 4, b += 4) {
      d0 += values[b]! * query[d]!;
      d1 += values[b + 1]! * query[d + 1]!;
      d2 += values[b + 2]! * query[d + 2]!;
      d3 += values[b + 3]! * query[d + 3]!;
    }
    return d0 + d1 + d2 + d3;
  }

  /** Keeps the best `k` hits, best first, as scores arrive. */
  function topK(k: number) {
    const best: VectorHit[] = [];
    let floor = Number.NEGATIVE_INFINITY;
    return {
      best,
      offer(r: number, score: number) {
        if (best.length === k && score <= floor) return;
        let at = best.length;
        while (at > 0 && best[at - 1]!.score < score) at--;
        best.splice(at, 0, { r, score });
        if (best.length > k) best.pop();
        if (best.length === k) floor = best[k - 1]!.score;
      },
    };
  }

  return {
    embedPending: (maxMs: number) => embedPending(maxMs),

    /** The `k` memories most similar to `text`, best first; `allowed` (rowids) narrows. */
    search(text: string, k: number, allowed?: ReadonlySet<number>): VectorHit[] {
      const query = queryVector(text);
      if (k <= 0 || !query) return [];
      const { rids, values } = load();
      const top = topK(k);
      for (let i = 0; i < rids.length; i++) {
        if (allowed && !allowed.has(rids[i]!)) continue;
        top.offer(rids[i]!, dot(values, i, query));
      }
      return top.best;
    },

    /** The `k` of the live memories `among` (rowids) most similar to `text`, best first. Takes
     * their vectors from the packed cache (vector-cache.ts; the float32 matrix is neither loaded
     * nor rebuilt after a write), reads those it lacks from the table, and embeds those that have
     * none (stored best effort). */
    searchAmong(text: string, k: number, among: readonly number[]): VectorHit[] {
      const query = queryVector(text);
      if (k <= 0 || !query || among.length === 0) return [];
      const top = topK(k);
      const cached = cache.refresh();
      const score = (bytes: ArrayLike<number>) => {
        let s = 0;
        for (let d = 0; d < DIMS; d++) s += bytes[d]! * query[d]!;
        return s / 127;
      };
      const unknown: number[] = [];
      for (const r of among) {
        const v = cached ? cache.get(r) : undefined;
        if (v) top.offer(r, score(v));
        else unknown.push(r);
      }
      if (unknown.length === 0) return top.best;
      const rows = q(
        `SELECT m.rid AS rid, m.content AS content, v.vector AS vector FROM memories m
         LEFT JOIN memory_vectors v ON v.rid = m.rid AND v.model = ?
         WHERE m.rid IN (SELECT value FROM json_each(?)) AND m.deleted = 0`,
      ).all(EDGE_EMBEDDER_ID, JSON.stringify(unknown)) as {
        rid: number;
        content: string;
        vector: Uint8Array | null;
      }[];
      const fresh: { rid: number; content: string; vector: Uint8Array }[] = [];
      for (const row of rows) {
        let bytes = row.vector;
        if (!bytes) {
          bytes = quantize(wordVectorEmbed(row.content));
          fresh.push({ rid: row.rid, content: row.content, vector: bytes });
        } else cache.put(row.rid, bytes);
        top.offer(row.rid, score(new Int8Array(bytes.buffer, bytes.byteOffset, DIMS)));
      }
      // Stored vectors reach the cache through its log on the next call.
      if (fresh.length > 0) store(fresh);
      return top.best;
    },
  };
}
