/**
 * How hybrid search merges the keyword (BM25) and the vector (cosine) rankings, on the VPS and on
 * the edge alike: a weighted sum of normalised scores. The keyword score is divided by the best
 * keyword score of the query (BM25 has no fixed scale), the similarity is min-max scaled over the
 * vector list (cosines of one embedder bunch in a narrow band), and the keyword part weighs 0.7.
 *
 * Why not reciprocal rank fusion: RRF gives both lists equal say, so a weak embedder drags BM25
 * down (on LoCoMo conversations RRF of BM25 and the hashing embedder ranked 10 points of
 * recall@10 below BM25 alone). Scores keep how sure each list is: a memory far ahead on keywords
 * stays ahead unless the vectors rank it low, and the vectors decide between memories that the
 * keywords score alike or miss. With the word-vector embedder it ranks above both of its parts on
 * those conversations (bench/RESULTS.md).
 */

export interface Scored {
  id: string;
  score: number;
}

export interface FusedHit {
  id: string;
  /** keywordWeight · keyword score / best keyword score + (1 − keywordWeight) · scaled similarity. */
  score: number;
  /** The id's rank (from 1) in the keyword and the vector list, or null where it is absent. */
  ranks: [number | null, number | null];
}

/** The keyword part's weight; 0.6–0.8 ranked alike on the dev conversations, 0.7 best. */
export const KEYWORD_WEIGHT = 0.7;

/**
 * Fuses a keyword and a vector ranking (each best first, scores higher-is-better), best first.
 * Ties keep the keyword order, then the vector order, so the result is deterministic. Duplicate
 * ids within one list count once, at their best rank. An empty list leaves the other's order.
 */
export function fuseScores(
  keyword: readonly Scored[],
  vector: readonly Scored[],
  options: { keywordWeight?: number; limit?: number } = {},
): FusedHit[] {
  const w = options.keywordWeight ?? KEYWORD_WEIGHT;
  const hits = new Map<string, FusedHit & { order: number }>();
  let order = 0;
  const add = (list: readonly Scored[], li: 0 | 1, weight: number, scale: (s: number) => number) => {
    list.forEach((h, i) => {
      let hit = hits.get(h.id);
      if (!hit) {
        hit = { id: h.id, score: 0, ranks: [null, null], order: order++ };
        hits.set(h.id, hit);
      }
      if (hit.ranks[li] !== null) return;
      hit.ranks[li] = i + 1;
      hit.score += weight * scale(h.score);
    });
  };
  const best = Math.max(0, ...keyword.map((h) => h.score));
  add(keyword, 0, w, (s) => (best > 0 ? Math.max(0, s) / best : 1));
  const scores = vector.map((h) => h.score);
  const hi = Math.max(...scores);
  const lo = Math.min(...scores);
  add(vector, 1, 1 - w, (s) => (hi > lo ? (s - lo) / (hi - lo) : 1));
  const out = [...hits.values()].sort((a, b) => b.score - a.score || a.order - b.order);
  return out.slice(0, options.limit ?? out.length).map(({ id, score, ranks }) => ({ id, score, ranks }));
}
