/**
 * Planning a keyword recall so that it stays fast on a large store.
 *
 * FTS5 ranks by computing bm25 for every row the MATCH expression yields, so an OR over a word
 * that is in most memories ("the", "what") costs time in proportion to the whole store (about
 * 250 ms for one such word over 100,000 memories). The plan keeps the words that discriminate
 * and lets the common ones only re-rank:
 *
 * 1. English stopwords are dropped when the query has other words.
 * 2. Each word's document frequency is counted, capped at `budget + 1` (cheap: it stops early).
 * 3. Rare words (together at most `budget` matching memories) choose the candidates; the
 *    remaining, common words only add to the score of candidates that also contain them:
 *    `(rare NOT common) OR (rare AND common)`, which FTS5 scores exactly like `rare OR common`
 *    on those candidates.
 * 4. When every word is common, the candidates are the newest memories containing any of them,
 *    in a rowid window sized to hold about `budget` matches.
 *
 * Tokens contain only letters, digits and `_` (see core/query.ts), so quoting them makes each
 * one a plain FTS5 string; user text never reaches MATCH as syntax.
 */
import { QUESTION_STOPWORDS, queryTokens } from "../../../core/query.ts";

/** Common English words that carry no meaning for recall on their own (shared with the VPS's
 * keyword search, core/query.ts). */
export const STOPWORDS: ReadonlySet<string> = QUESTION_STOPWORDS;

export interface RecallPlan {
  /** The FTS5 MATCH expression. */
  match: string;
  /** Only rows with rowid >= this are considered (the all-common case). */
  minRowid?: number;
}

export interface PlanSource {
  /** How many rows contain `token`, counting at most `cap`. */
  countCapped(token: string, cap: number): number;
  /** How many of the rows with rowid >= `minRowid` match `match`, counting at most `cap`. */
  countInWindow(match: string, minRowid: number, cap: number): number;
  /** The largest rowid in the index (0 when empty). */
  maxRowid(): number;
}

/** At most this many memories are ranked for one recall. */
export const DEFAULT_CANDIDATE_BUDGET = 3000;
/** At most this many common words re-rank the candidates (bm25 reads each one's whole posting
 * list once per query, so each costs time in proportion to how common it is). */
const MAX_COMMON = 4;
/** A query made only of stopwords uses its first words only. */
const MAX_STOPWORDS = 2;

const quote = (t: string) => `"${t}"`;
const any = (ts: string[]) => (ts.length === 1 ? quote(ts[0]!) : `(${ts.map(quote).join(" OR ")})`);

export function planRecall(
  text: string,
  source: PlanSource,
  budget: number = DEFAULT_CANDIDATE_BUDGET,
): RecallPlan | undefined {
  const all = queryTokens(text);
  const meaningful = all.filter((t) => !STOPWORDS.has(t));
  const tokens = meaningful.length > 0 ? meaningful : all.slice(0, MAX_STOPWORDS);
  if (tokens.length === 0) return undefined;

  const cap = budget + 1;
  const counted = tokens.map((t) => ({ t, n: source.countCapped(t, cap) })).filter((x) => x.n > 0);
  if (counted.length === 0) return undefined;

  const rare: string[] = [];
  const common: string[] = [];
  let total = 0;
  for (const x of [...counted].sort((a, b) => a.n - b.n)) {
    if (x.n < cap && (rare.length === 0 || total + x.n <= budget)) {
      rare.push(x.t);
      total += x.n;
    } else common.push(x.t);
  }
  const boost = common.slice(0, MAX_COMMON);

  if (rare.length > 0) {
    if (boost.length === 0) return { match: rare.map(quote).join(" OR ") };
    // FTS5's bm25 adds up the phrases of the branches that matched a row, so this scores a
    // candidate exactly as an unpruned OR over all the words would.
    return { match: `(${any(rare)} NOT ${any(boost)}) OR (${any(rare)} AND ${any(boost)})` };
  }

  // Every word is common: rank the newest matches only. Probe how dense the matches are among
  // the newest `budget` rows and size the window to hold about `budget` of them.
  const match = boost.map(quote).join(" OR ");
  const max = source.maxRowid();
  const probeFrom = Math.max(1, max - budget + 1);
  const inProbe = source.countInWindow(match, probeFrom, cap);
  const density = Math.max(inProbe, 1) / Math.max(max - probeFrom + 1, 1);
  const window = Math.ceil(budget / density);
  return { match, minRowid: Math.max(1, max - window + 1) };
}
