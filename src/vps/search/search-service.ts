/**
 * `POST /v1/search`: the user's memories by keyword (PostgreSQL full-text search),
 * by meaning (vector similarity) or both (hybrid, fused by normalised scores).
 *
 * - keyword: PostgreSQL full-text search ranked by BM25, as the edge ranks (bm25.ts), with the
 *   edge's boost for memories naming the people a question names (core/names.ts);
 * - semantic: the query is embedded and compared with every current vector of the user, by an
 *   exact scan over the cached decoded vectors (see vector-index.ts), or through pgvector's index
 *   when the database has it;
 * - hybrid: both lists (the best 100 of each) fused by normalised scores (core/fusion.ts).
 *
 * A `filter` (src/core/filter.ts) narrows inside each query: a WHERE condition of the keyword
 * search and of pgvector's, and the set of memories the exact vector scan considers.
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import { isEmptyFilter, type ResolvedFilter, resolveFilter } from "../../core/filter.ts";
import { fuseScores } from "../../core/fusion.ts";
import type { Memory } from "../../core/memory.ts";
import { nameFactor, queryNames } from "../../core/names.ts";
import type { Embedder } from "../../core/ports/embedder.ts";
import type { SearchAsk, SearchHit, SearchRequest, SearchResponse } from "../../core/protocol/heavy.ts";
import { queryTokens } from "../../core/query.ts";
import { boostWindow, eventTime, readTime, timeRecall } from "../../core/time-query.ts";
import { filterWhere } from "../db/filter-sql.ts";
import { MEMORY_COLUMNS, rowToMemory } from "../db/memories.ts";
import type { MemoryRow, VpsTables } from "../db/schema.ts";
import { MAX_EMBED_CHARS } from "../jobs/embed-jobs.ts";
import { createBm25Search } from "./bm25.ts";
import type { ScoredId } from "./vector.ts";
import type { VectorIndex } from "./vector-index.ts";

/** Vector search through pgvector, when the database has it (see pgvector.ts). */
export interface AnnSearch {
  /** `where`: a condition on the memories (aliased `m`) the search is narrowed to. */
  search(
    userId: string,
    query: readonly number[],
    k: number,
    where?: RawBuilder<unknown>,
  ): Promise<ScoredId[]>;
}

export interface SearchServiceDeps {
  db: Kysely<VpsTables>;
  embedder: Embedder;
  vectors: VectorIndex;
  /** pgvector, when available (known after start-up); otherwise the exact scan. */
  ann?: () => AnnSearch | undefined;
  /** The clock relative filter times are taken against (ms; default Date.now). */
  now?: () => number;
}

/** A filter as the queries use it: the condition, or none. */
interface Narrowing {
  where: RawBuilder<unknown>;
}

/** The memory as search answers it: without its vector (large, and not what was asked). */
function bare(m: Memory): Memory {
  const { embedding: _e, ...rest } = m;
  return rest;
}

/** About 200 characters of `content` around the first query word it contains. */
export function snippetFor(content: string, tokens: readonly string[], width = 200): string {
  const flat = content.replace(/\s+/g, " ").trim();
  if (flat.length <= width) return flat;
  const lower = flat.toLowerCase();
  let at = -1;
  for (const t of tokens) {
    const i = lower.indexOf(t);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  if (at < 0) return `${flat.slice(0, width - 1)}…`;
  const start = Math.max(0, at - Math.floor(width / 3));
  const end = Math.min(flat.length, start + width);
  return `${start > 0 ? "…" : ""}${flat.slice(start, end)}${end < flat.length ? "…" : ""}`;
}

/** Hybrid search fuses this many of each list's best (100 ranked 1–2 points of recall@10 above 30
 * or 60 on the LoCoMo dev conversations: the vector list's min-max scale needs its tail). */
const HYBRID_DEPTH = 100;

export type SearchService = ReturnType<typeof createSearchService>;

export function createSearchService(deps: SearchServiceDeps) {
  const { db, embedder, vectors } = deps;
  const bm25Search = createBm25Search(db);

  async function semantic(userId: string, text: string, k: number, f?: Narrowing): Promise<ScoredId[]> {
    const [q] = await embedder.embed([text.slice(0, MAX_EMBED_CHARS)]);
    if (!q) return [];
    const ann = deps.ann?.();
    if (ann) return ann.search(userId, q, k, f?.where);
    if (!f) return vectors.search(userId, q, k);
    // The exact scan considers only the memories the filter lets through.
    const allowed = await sql<{ id: string }>`
      select m.id from memories m where m.user_id = ${userId} and not m.deleted and ${f.where}`.execute(db);
    return vectors.search(userId, q, k, new Set(allowed.rows.map((r) => r.id)));
  }

  async function load(userId: string, ids: string[]): Promise<Map<string, Memory>> {
    if (ids.length === 0) return new Map();
    const r = await sql<MemoryRow>`
      select ${MEMORY_COLUMNS} from memories
      where user_id = ${userId} and id = any(${ids}::text[]) and not deleted`.execute(db);
    return new Map(r.rows.map((row) => [row.id, bare(rowToMemory({ ...row, embedding: null }))]));
  }

  /** Keyword scores times each memory's name factor (core/names.ts), best first. */
  async function withNames(
    userId: string,
    ranked: ScoredId[],
    names: readonly string[],
  ): Promise<ScoredId[]> {
    if (names.length === 0 || ranked.length === 0) return ranked;
    const memories = await load(
      userId,
      ranked.map((h) => h.id),
    );
    return ranked
      .map((h) => ({ id: h.id, score: h.score * nameFactor(names, memories.get(h.id)?.content ?? "") }))
      .sort((a, b) => b.score - a.score);
  }

  /** Whether any live memory of the user passes `f`. */
  async function anyIn(userId: string, f: ResolvedFilter): Promise<boolean> {
    const r = await sql<{ one: number }>`
      select 1 as one from memories m
      where m.user_id = ${userId} and not m.deleted and ${filterWhere(f)} limit 1`.execute(db);
    return r.rows.length > 0;
  }

  /** Ranked hits (memories loaded, snippets made) for `query`, narrowed by `resolved`. A query
   * with no words (a time phrase alone) answers the newest memories `resolved` lets through when
   * `newestIfNoWords`. */
  async function ranked(
    userId: string,
    req: Pick<SearchRequest, "query" | "mode" | "limit">,
    resolved: ResolvedFilter,
    newestIfNoWords = false,
  ): Promise<SearchHit[]> {
    if (newestIfNoWords && queryTokens(req.query).length === 0) {
      const r = await sql<MemoryRow>`
        select ${MEMORY_COLUMNS} from memories m
        where m.user_id = ${userId} and not m.deleted and ${filterWhere(resolved)}
        order by coalesce(m.occurred_at, m.created_at)::timestamptz desc, m.id desc
        limit ${req.limit}`.execute(db);
      return r.rows.map((row, i) => {
        const memory = bare(rowToMemory({ ...row, embedding: null }));
        return { memory, score: 1 / (i + 1), snippet: snippetFor(memory.content, []) };
      });
    }
    const depth = Math.max(req.limit, HYBRID_DEPTH);
    const f = isEmptyFilter(resolved) ? undefined : { where: filterWhere(resolved) };
    let ranked: ScoredId[];
    // A question that names someone ranks the memories naming them higher, as the edge does.
    const names = queryNames(req.query);
    if (req.mode === "keyword")
      ranked = (
        await withNames(
          userId,
          await bm25Search(userId, req.query, req.limit * (names.length > 0 ? 2 : 1), f?.where),
          names,
        )
      ).slice(0, req.limit);
    else if (req.mode === "semantic") ranked = await semantic(userId, req.query, req.limit, f);
    else {
      const [kw, sem] = await Promise.all([
        bm25Search(userId, req.query, depth, f?.where).then((r) => withNames(userId, r, names)),
        semantic(userId, req.query, depth, f),
      ]);
      ranked = fuseScores(kw, sem, { limit: req.limit }).map((h) => ({ id: h.id, score: h.score }));
    }
    const memories = await load(
      userId,
      ranked.map((h) => h.id),
    );
    const tokens = queryTokens(req.query);
    const results: SearchHit[] = [];
    for (const h of ranked) {
      const memory = memories.get(h.id);
      if (memory) results.push({ memory, score: h.score, snippet: snippetFor(memory.content, tokens) });
    }
    return results;
  }

  return {
    async search(userId: string, req: SearchAsk): Promise<SearchResponse> {
      const started = performance.now();
      const now = new Date((deps.now ?? Date.now)());
      const resolved = resolveFilter(req.filter, now);
      // The time the query names (core/time-query.ts), read in UTC, as the edge reads it.
      const use = req.time ?? "boost";
      const reading = use === "off" ? undefined : readTime(req.query, now);
      const time = timeRecall(reading, use);
      let results: SearchHit[];
      if (!time) results = await ranked(userId, req, resolved);
      else {
        const within: ResolvedFilter = { ...resolved, window: time.window };
        const rest = { ...req, query: time.rest };
        if (time.use === "filter") results = await ranked(userId, rest, within, true);
        // A window no memory falls in leaves the ranking as it would be without it.
        else if (!(await anyIn(userId, within))) results = await ranked(userId, req, resolved);
        else {
          const [all, inWindow] = await Promise.all([
            // A time phrase alone ("yesterday") has no words to rank every memory by.
            queryTokens(rest.query).length > 0 ? ranked(userId, rest, resolved) : [],
            ranked(userId, rest, within, true),
          ]);
          results = boostWindow(all, inWindow, {
            key: (h) => h.memory.id,
            at: (h) => eventTime(h.memory),
            window: time.window,
            limit: req.limit,
          });
        }
      }
      return {
        results,
        mode: req.mode,
        took_ms: Math.round((performance.now() - started) * 100) / 100,
        ...(req.mode === "keyword"
          ? {}
          : { vector_search: deps.ann?.() ? ("pgvector" as const) : ("exact" as const) }),
        ...(reading && time
          ? { time: { phrase: reading.phrase, since: reading.since, until: reading.until, use: time.use } }
          : {}),
      };
    },

    /** Hybrid retrieval for `ask`: the best `limit` memories with their scores. */
    async retrieve(userId: string, question: string, limit: number): Promise<SearchHit[]> {
      return (await this.search(userId, { query: question, mode: "hybrid", limit })).results;
    },
  };
}
