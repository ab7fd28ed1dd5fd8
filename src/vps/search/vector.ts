/**
 * Vectors without pgvector: compared by an exact scan (their storage is ../db/vector-bytes.ts).
 * Vectors from both embedders are unit length, so the dot product is the cosine similarity.
 */

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
