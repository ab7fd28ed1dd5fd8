/**
 * Vectors without pgvector: stored as `bytea` of little-endian float32 (4 bytes a dimension,
 * 1.5 KB for 384 dimensions), compared by an exact scan. Vectors from both embedders are unit
 * length, so the dot product is the cosine similarity.
 */

/** Packs a vector as little-endian float32 bytes. */
export function vectorToBytes(v: readonly number[]): Uint8Array {
  const bytes = new Uint8Array(v.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i]!, true);
  return bytes;
}

export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Unpacks little-endian float32 bytes; throws on a length that is not a multiple of 4. */
export function bytesToVector(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0)
    throw new Error(`vector bytes must be a multiple of 4, got ${bytes.byteLength}`);
  // Every platform Dionysus builds for is little-endian: one copy, no per-element decoding.
  // (A fresh copy: `Buffer#slice` is a view on a shared pool, so its `.buffer` is not the vector.)
  if (LITTLE_ENDIAN) {
    const copy = new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return new Float32Array(copy.buffer);
  }
  const out = new Float32Array(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Scales a vector to unit length (a zero vector stays zero). */
export function normalize(v: readonly number[]): number[] {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  return n > 0 ? v.map((x) => x / n) : v.map(() => 0);
}

export interface ScoredId {
  id: string;
  score: number;
}

/**
 * The `k` candidates most similar to `query` by dot product (cosine for unit vectors), best
 * first; ties by id. Candidates of another length are skipped. One pass, a bounded buffer:
 * O(n · d) time, O(k) memory.
 */
export function topKByDot(
  query: ArrayLike<number>,
  candidates: Iterable<{ id: string; vector: ArrayLike<number> }>,
  k: number,
  minScore = Number.NEGATIVE_INFINITY,
): ScoredId[] {
  const best: ScoredId[] = [];
  const worse = (a: ScoredId, b: ScoredId) => a.score < b.score || (a.score === b.score && a.id > b.id);
  for (const c of candidates) {
    const v = c.vector;
    if (v.length !== query.length) continue;
    let dot = 0;
    for (let i = 0; i < v.length; i++) dot += v[i]! * query[i]!;
    if (dot < minScore) continue;
    const hit = { id: c.id, score: dot };
    if (best.length < k) {
      best.push(hit);
      best.sort((a, b) => (worse(a, b) ? 1 : worse(b, a) ? -1 : 0));
    } else if (k > 0 && worse(best[best.length - 1]!, hit)) {
      best[best.length - 1] = hit;
      for (let j = best.length - 1; j > 0 && worse(best[j - 1]!, best[j]!); j--) {
        [best[j - 1], best[j]] = [best[j]!, best[j - 1]!];
      }
    }
  }
  return best;
}

/**
 * A stored vector as the change feed carries it (`Memory.embedding`): numbers rounded to five
 * decimals, which keeps cosine similarities within about 1e-4 and the JSON about half as long.
 */
export function feedVector(bytes: Uint8Array): number[] {
  return Array.from(bytesToVector(bytes), (x) => Math.round(x * 1e5) / 1e5);
}
