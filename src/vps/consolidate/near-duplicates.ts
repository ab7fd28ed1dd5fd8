/**
 * Finding duplicate and near-duplicate memories for consolidation. Two memories are
 * near-duplicates when the Jaccard similarity of their word-pair sets is at least `threshold`
 * (0.8 by default), after normalisation (NFKC, lower case, accents and punctuation removed), so
 * "Had coffee with Ana in Lisbon" and "had coffee with Ana in Lisbon!" are duplicates, and
 * "Had coffee with Ana in Lisbon today" is a near-duplicate of both (5 of 6 pairs shared).
 *
 * Identical texts (after normalisation) are grouped first. Candidates among the rest come from
 * MinHash with banding: 128 hashes in 16 bands of 8, so a pair at similarity 0.8 becomes a
 * candidate with probability 0.95, one at 0.9 with 0.9998, one at 0.5 with 0.06 (below a
 * threshold of 0.75: 32 bands of 4). The cost therefore usually grows with the number of
 * memories rather than its square. Every candidate pair is checked exactly, so nothing under
 * the threshold is ever merged. The hashes are fixed, so the same input always gives the same
 * groups. Groups
 * are connected components (A~B and B~C put A, B, C together). The survivor of a group is the
 * oldest memory (by `created_at`, then id): it keeps its id and history, the others become
 * tombstones that point to it.
 */
import { fnv1a } from "../../core/hash.ts";

export interface DedupCandidate {
  id: string;
  content: string;
  /** ISO timestamp; the oldest memory of a group survives. */
  created_at: string;
}

export interface DuplicateGroup {
  survivor: string;
  /** The other members, oldest first. */
  duplicates: string[];
  /** The lowest exact Jaccard similarity among the verified pairs that joined the group. */
  similarity: number;
}

const HASHES = 128;

function words(text: string): string[] {
  return (
    text
      .normalize("NFKC")
      .toLowerCase()
      .normalize("NFD")
      .replace(/\p{M}+/gu, "")
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

/** Word pairs of a text; a one-word text is its word. */
export function shingles(text: string): Set<string> {
  const w = words(text);
  if (w.length === 1) return new Set(w);
  const out = new Set<string>();
  for (let i = 0; i + 1 < w.length; i++) out.add(`${w[i]} ${w[i + 1]}`);
  return out;
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let inter = 0;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

function minhash(set: ReadonlySet<string>): Uint32Array {
  const sig = new Uint32Array(HASHES).fill(0xffffffff);
  for (const s of set) {
    // Two base hashes give all 64 (Kirsch-Mitzenmacher double hashing), then a final mix.
    const h1 = fnv1a(s, 0x9e3779b1);
    const h2 = fnv1a(s, 0x3c6ef362) | 1;
    for (let i = 0; i < HASHES; i++) {
      let h = (h1 + Math.imul(i, h2)) >>> 0;
      h ^= h >>> 15;
      h = Math.imul(h, 0x2c1b3c6d);
      h ^= h >>> 12;
      h >>>= 0;
      if (h < sig[i]!) sig[i] = h;
    }
  }
  return sig;
}

/** Groups of duplicate and near-duplicate memories, each with its survivor (see the module doc). */
export function findDuplicateGroups(
  memories: readonly DedupCandidate[],
  options: { threshold?: number } = {},
): DuplicateGroup[] {
  const threshold = options.threshold ?? 0.8;
  // Longer bands keep false candidates rare at the usual threshold; lower thresholds need shorter
  // ones to keep finding true pairs (a pair at 0.6 is a candidate with probability 0.98 then).
  const ROWS = threshold >= 0.75 ? 8 : 4;
  const BANDS = HASHES / ROWS;
  const sets = memories.map((m) => shingles(m.content));
  const parent = memories.map((_, i) => i);
  const find = (i: number): number => {
    while (parent[i] !== i) {
      parent[i] = parent[parent[i]!]!;
      i = parent[i]!;
    }
    return i;
  };
  const minSim = new Map<number, number>();
  const checked = new Set<string>();
  const buckets = new Map<string, number[]>();
  const firstWithKey = new Map<string, number>();
  sets.forEach((set, i) => {
    if (set.size === 0) return;
    const key = [...set].sort().join("\u0000");
    const first = firstWithKey.get(key);
    if (first !== undefined) {
      parent[find(i)] = find(first);
      return;
    }
    firstWithKey.set(key, i);
    const sig = minhash(set);
    for (let b = 0; b < BANDS; b++) {
      const key = `${b}:${Array.from(sig.subarray(b * ROWS, (b + 1) * ROWS)).join(",")}`;
      const list = buckets.get(key);
      if (list) list.push(i);
      else buckets.set(key, [i]);
    }
  });
  for (const list of buckets.values()) {
    for (let x = 0; x < list.length; x++) {
      for (let y = x + 1; y < list.length; y++) {
        const a = list[x]!;
        const b = list[y]!;
        const pair = `${a}:${b}`;
        if (checked.has(pair)) continue;
        checked.add(pair);
        const sim = jaccard(sets[a]!, sets[b]!);
        if (sim < threshold) continue;
        const ra = find(a);
        const rb = find(b);
        const low = Math.min(sim, minSim.get(ra) ?? 1, minSim.get(rb) ?? 1);
        if (ra !== rb) parent[rb] = ra;
        minSim.set(ra, low);
      }
    }
  }
  const groups = new Map<number, number[]>();
  memories.forEach((_, i) => {
    const r = find(i);
    const g = groups.get(r);
    if (g) g.push(i);
    else groups.set(r, [i]);
  });
  const older = (a: DedupCandidate, b: DedupCandidate) =>
    a.created_at < b.created_at
      ? -1
      : a.created_at > b.created_at
        ? 1
        : a.id < b.id
          ? -1
          : a.id > b.id
            ? 1
            : 0;
  const out: DuplicateGroup[] = [];
  for (const [root, members] of groups) {
    if (members.length < 2) continue;
    const sorted = members.map((i) => memories[i]!).sort(older);
    out.push({
      survivor: sorted[0]!.id,
      duplicates: sorted.slice(1).map((m) => m.id),
      similarity: minSim.get(root) ?? 1,
    });
  }
  return out.sort((a, b) => (a.survivor < b.survivor ? -1 : 1));
}
