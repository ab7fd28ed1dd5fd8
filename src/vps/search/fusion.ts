/**
 * Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009), how hybrid search merges the
 * keyword and the vector rankings: each list gives a document `1 / (k + rank)` (rank from 1) and
 * the sums are ranked. It needs no score calibration between the lists; k = 60 as in the paper.
 */

export interface FusedHit {
  id: string;
  /** Sum of 1 / (k + rank) over the lists that contain the id. */
  score: number;
  /** The id's rank (from 1) in each input list, or null where it is absent. */
  ranks: (number | null)[];
}

/**
 * Fuses ranked id lists, best first. Ties keep the order of first appearance (earlier list,
 * then better rank), so the result is deterministic. Duplicate ids within one list count once,
 * at their best rank.
 */
export function reciprocalRankFusion(
  lists: readonly (readonly string[])[],
  options: { k?: number; limit?: number } = {},
): FusedHit[] {
  const k = options.k ?? 60;
  const hits = new Map<string, FusedHit & { order: number }>();
  let order = 0;
  lists.forEach((list, li) => {
    list.forEach((id, i) => {
      let hit = hits.get(id);
      if (!hit) {
        hit = { id, score: 0, ranks: lists.map(() => null), order: order++ };
        hits.set(id, hit);
      }
      if (hit.ranks[li] !== null) return;
      hit.ranks[li] = i + 1;
      hit.score += 1 / (k + i + 1);
    });
  });
  const out = [...hits.values()].sort((a, b) => b.score - a.score || a.order - b.order);
  return out.slice(0, options.limit ?? out.length).map(({ id, score, ranks }) => ({ id, score, ranks }));
}
