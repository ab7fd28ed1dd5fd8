/**
 * Keyword search on the VPS, ranked by Okapi BM25 as the edge's FTS5 ranks it. PostgreSQL's
 * `ts_rank` is not BM25: it has no inverse document frequency, so a word in every memory counts as
 * much as a rare one (on LoCoMo conversations it ranked about 8 points of recall@10 below the
 * edge). Computed in SQL from the stored `tsv` and its GIN index, so it runs the same on
 * PostgreSQL and PGlite:
 *
 * 1. The query's words (user text, never tsquery syntax), without the stopwords of questions
 *    (core/query.ts, as the edge drops them), become lexemes with `to_tsvector('english', …)`
 *    (the same stemming as the stored `tsv`). Each lexeme's document frequency is counted
 *    through the index, capped so that a word in most memories costs a bounded time; these counts
 *    and the user's memory count are reused for 30 s.
 * 2. Candidates, as the edge plans them (edge/store/sqlite/recall-plan.ts): the rare lexemes
 *    (together in at most {@link CANDIDATE_BUDGET} memories) choose them, the common ones only
 *    add to their scores; when every lexeme is common, the memories holding any of them among the
 *    newest changes of the user's feed.
 * 3. Each candidate scores `Σ idf · tf·(k1+1) / (tf + k1·(1 − b + b·len/avglen))` over the
 *    lexemes it holds, k1 = 1.2, b = 0.75, idf = max(10⁻⁶, ln((N − df + ½)/(df + ½))) as FTS5's.
 *    `tf`, the lexeme's number of occurrences, is recovered from `ts_rank` on that one lexeme
 *    (see {@link occurrences}; unnesting every candidate's tsvector to count positions cost 10
 *    times more); `len` is the memory's number of words, stopwords included, as FTS5 counts its
 *    tokens (`length(tsv)`, its distinct lexemes without stopwords, made a short memory of
 *    stopwords and a name look as long as one of content words), and `avglen` its mean over the
 *    candidates.
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import { QUESTION_STOPWORDS, queryTokens } from "../../core/query.ts";
import type { VpsTables } from "../db/schema.ts";
import type { ScoredId } from "./vector.ts";

/** At most this many memories are scored for one query (as on the edge). */
export const CANDIDATE_BUDGET = 3000;
/** Document frequencies are counted up to this many memories (each count then stays a few ms); a
 * commoner word is taken as this common, which overrates it a little against rarer words. */
const DF_CAP = CANDIDATE_BUDGET + 1;
/** How long a user's memory count (BM25's N) and a word's document frequency are reused:
 * counting them in 100,000 memories costs tens of ms, and a few writes barely move an idf. */
const COUNT_TTL_MS = 30_000;
/** A query of common words only ranks the memories among the newest this many changes of the
 * user's feed (each holds a common word with a chance of at least DF_CAP / N). */
const COMMON_WINDOW = 3 * CANDIDATE_BUDGET;
/** At most this many common lexemes add to the scores. */
const MAX_COMMON = 4;
/** A query made only of stopwords uses its first words only. */
const MAX_STOPWORDS = 2;
const K1 = 1.2;
const B = 0.75;
/** `ts_rank(tsv, 'lexeme', 0)` of a memory holding the lexeme once. */
const RANK_OF_ONE = 0.06079271;
/** A memory's length in words (spaces + 1), stopwords included, as FTS5 counts its tokens. */
const WORDS = sql`(length(m.content) - length(replace(m.content, ' ', '')) + 1)::float8`;
/** FTS5's floor for the idf of a word in half the memories or more. */
const MIN_IDF = 1e-6;
/** π²/6: the limit of Σ 1/j². */
const ZETA_2 = Math.PI ** 2 / 6;

/**
 * How many times a memory holds a lexeme, from `ts_rank(tsv, lexeme, 0)` relative to one
 * occurrence (`r`): for one lexeme ts_rank is proportional to Σ_{j=1..f} 1/j² over its f positions,
 * whose tail beyond f is about 1/(f + ½), so f = 1/(π²/6 − r) − ½, rounded (exact to well past
 * 100). BM25 then saturates the true count, as FTS5 does, instead of ts_rank's 1, 1.25, 1.36, …
 */
export function occurrences(r: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`round(1 / greatest(${sql.lit(ZETA_2)} - ${r}, 0.005) - 0.5)`;
}

/** A query lexeme and how many of the user's memories hold it (at most DF_CAP). */
interface Term {
  lex: string;
  df: number;
}

/** `where`: a condition on the memory `m` (a search filter) that every answer must meet. */
export type Bm25Search = (
  userId: string,
  text: string,
  k: number,
  where?: RawBuilder<unknown>,
) => Promise<ScoredId[]>;

/** BM25 keyword search over `db`; `now` (ms) dates the cached memory counts. */
export function createBm25Search(db: Kysely<VpsTables>, now: () => number = Date.now): Bm25Search {
  const counts = new Map<string, { n: number; at: number }>();
  const frequencies = new Map<string, { terms: Term[]; at: number }>();

  /** Each token's lexemes and their document frequencies, counted at most every 30 s. */
  async function documentFrequencies(userId: string, tokens: string[]): Promise<Term[]> {
    const key = (t: string) => `${userId}\u0000${t}`;
    const fresh = (t: string) => {
      const c = frequencies.get(key(t));
      return c !== undefined && now() - c.at < COUNT_TTL_MS;
    };
    const todo = tokens.filter((t) => !fresh(t));
    if (todo.length > 0) {
      const r = await sql<{ tok: string; lex: string | null; df: number }>`
        select x.tok, t.lexeme as lex,
          (select count(*) from (
            select 1 from memories m
            where m.user_id = ${userId} and not m.deleted and m.tsv @@ quote_literal(t.lexeme)::tsquery
            limit ${DF_CAP}) s)::int as df
        from unnest(${todo}::text[]) as x(tok)
        left join lateral unnest(to_tsvector('english', x.tok)) t on true`.execute(db);
      if (frequencies.size > 100_000) frequencies.clear();
      const at = now();
      for (const t of todo) frequencies.set(key(t), { terms: [], at });
      for (const row of r.rows)
        if (row.lex !== null) frequencies.get(key(row.tok))!.terms.push({ lex: row.lex, df: Number(row.df) });
    }
    const seen = new Map<string, Term>();
    for (const t of tokens) {
      const { terms } = frequencies.get(key(t))!;
      for (const term of terms) seen.set(term.lex, term);
      // A word in no memory yet is counted again next time: a memory written a moment ago is
      // found at once.
      if (terms.some((term) => term.df === 0)) frequencies.delete(key(t));
    }
    return [...seen.values()];
  }

  async function memoryCount(userId: string): Promise<number> {
    const cached = counts.get(userId);
    if (cached && now() - cached.at < COUNT_TTL_MS) return cached.n;
    const r = await sql<{ n: number }>`
      select count(*)::int as n from memories where user_id = ${userId} and not deleted`.execute(db);
    const n = Number(r.rows[0]?.n ?? 0);
    if (counts.size > 10_000) counts.clear();
    counts.set(userId, { n, at: now() });
    return n;
  }

  return (userId, text, k, where) =>
    search(db, userId, text, k, where ?? sql`true`, memoryCount, documentFrequencies);
}

async function search(
  db: Kysely<VpsTables>,
  userId: string,
  text: string,
  k: number,
  where: RawBuilder<unknown>,
  memoryCount: (userId: string) => Promise<number>,
  documentFrequencies: (userId: string, tokens: string[]) => Promise<Term[]>,
): Promise<ScoredId[]> {
  const all = queryTokens(text);
  const meaningful = all.filter((t) => !QUESTION_STOPWORDS.has(t));
  const tokens = meaningful.length > 0 ? meaningful : all.slice(0, MAX_STOPWORDS);
  if (tokens.length === 0) return [];

  const terms = (await documentFrequencies(userId, tokens)).filter((r) => r.df > 0);
  if (terms.length === 0) return [];
  const n = Math.max(await memoryCount(userId), ...terms.map((t) => t.df));

  const rare: typeof terms = [];
  const common: typeof terms = [];
  let total = 0;
  for (const t of [...terms].sort((a, b) => a.df - b.df)) {
    if (t.df < DF_CAP && (rare.length === 0 || total + t.df <= CANDIDATE_BUDGET)) {
      rare.push(t);
      total += t.df;
    } else common.push(t);
  }
  const scoring = [...rare, ...common.slice(0, MAX_COMMON)];
  // FTS5's idf (Robertson–Spärck Jones, floored just above 0): a word in half the memories or
  // more weighs nothing. The "+ 1" variant (Lucene's) gave such words up to ln 2 ≈ 0.7: on a
  // conversation every turn starts with its speaker's name, so each turn of the person a question
  // names got a flat part of the best score, which the hybrid's normalised fusion then weighed
  // against the vectors (1 point of recall@10 below the edge's hybrid on the LoCoMo dev set).
  const idf = scoring.map((t) => Math.max(MIN_IDF, Math.log((n - t.df + 0.5) / (t.df + 0.5))));
  const choosing = rare.length > 0 ? rare : scoring;
  const any = sql.join(
    choosing.map((t) => sql`quote_literal(${t.lex}::text)::tsquery`),
    sql` || `,
  );
  // Rare lexemes: every memory holding one. All common: those among the newest memories (a
  // range of the feed index, so the common words' long posting lists are never read whole).
  const candidates =
    rare.length > 0
      ? sql`select m.id, m.tsv, ${WORDS} as len from memories m
            where m.user_id = ${userId} and not m.deleted and m.tsv @@ (${any}) and ${where}`
      : sql`select m.id, m.tsv, ${WORDS} as len from memories m
            where m.user_id = ${userId}
              and m.seq > (select u.seq from users u where u.id = ${userId}) - ${COMMON_WINDOW}
              and not m.deleted and m.tsv @@ (${any}) and ${where}`;

  const r = await sql<{ id: string; score: number }>`
    with terms as (
      select x.lex, x.idf, quote_literal(x.lex)::tsquery as q
      from unnest(${scoring.map((t) => t.lex)}::text[], ${idf}::float8[]) as x(lex, idf)
    ),
    cand as (
      select c.id, c.tsv, c.len, avg(c.len) over ()::float8 as avglen
      from (${candidates}) c
    ),
    hits as (
      select c.id, c.len, greatest(c.avglen, 1) as avglen, t.idf,
        ${occurrences(sql`ts_rank(c.tsv, t.q, 0) / ${sql.lit(RANK_OF_ONE)}`)} as tf
      from cand c join terms t on c.tsv @@ t.q
    )
    select id, sum(idf * tf * ${sql.lit(K1 + 1)}
                   / (tf + ${sql.lit(K1)} * (1 - ${sql.lit(B)} + ${sql.lit(B)} * len / avglen))) as score
    from hits
    group by id
    order by score desc, id desc
    limit ${k}`.execute(db);
  return r.rows.map((x) => ({ id: x.id, score: Number(x.score) }));
}
