/**
 * `POST /v1/search`: the user's memories by keyword (PostgreSQL full-text search),
 * by meaning (vector similarity) or both (hybrid, fused by reciprocal rank fusion).
 *
 * - keyword: the query's words (user text, never tsquery syntax) become one `plainto_tsquery`
 *   each, OR-ed, so that a memory matching more of them ranks higher (`ts_rank`, normalised by
 *   length), as the edge's FTS5 search does;
 * - semantic: the query is embedded and compared with every current vector of the user, by an
 *   exact scan over the cached decoded vectors (see vector-index.ts), or through pgvector's index
 *   when the database has it;
 * - hybrid: both lists (three times the limit, at least 30, at most 100 each) fused with RRF.
 *
 * A `filter` (src/core/filter.ts) narrows inside each query: a WHERE condition of the keyword
 * search and of pgvector's, and the set of memories the exact vector scan considers.
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import { isEmptyFilter, resolveFilter } from "../../core/filter.ts";
import type { Memory } from "../../core/memory.ts";
import type { Embedder } from "../../core/ports/embedder.ts";
import type { SearchHit, SearchRequest, SearchResponse } from "../../core/protocol/heavy.ts";
import { queryTokens } from "../../core/query.ts";
import { filterWhere } from "../db/filter-sql.ts";
import { MEMORY_COLUMNS, rowToMemory } from "../db/memories.ts";
import type { MemoryRow, VpsTables } from "../db/schema.ts";
import { MAX_EMBED_CHARS } from "../jobs/embed-jobs.ts";
import { reciprocalRankFusion } from "./fusion.ts";
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

export type SearchService = ReturnType<typeof createSearchService>;

export function createSearchService(deps: SearchServiceDeps) {
  const { db, embedder, vectors } = deps;

  async function keyword(userId: string, text: string, k: number, f?: Narrowing): Promise<ScoredId[]> {
    const tokens = queryTokens(text);
    if (tokens.length === 0) return [];
    const tsq = sql.join(
      tokens.map((t) => sql`plainto_tsquery('english', ${t})`),
      sql` || `,
    );
    const r = await sql<{ id: string; score: number }>`
      select m.id, ts_rank(m.tsv, q.q, 1) as score
      from memories m, (select ${tsq} as q) q
      where m.user_id = ${userId} and not m.deleted and m.tsv @@ q.q and ${f?.where ?? sql`true`}
      order by score desc, m.id desc
      limit ${k}`.execute(db);
    return r.rows.map((x) => ({ id: x.id, score: Number(x.score) }));
  }

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

  return {
    async search(userId: string, req: SearchRequest): Promise<SearchResponse> {
      const started = performance.now();
      const depth = Math.min(100, Math.max(req.limit * 3, 30));
      const resolved = resolveFilter(req.filter, new Date((deps.now ?? Date.now)()));
      const f = isEmptyFilter(resolved) ? undefined : { where: filterWhere(resolved) };
      let ranked: ScoredId[];
      if (req.mode === "keyword") ranked = await keyword(userId, req.query, req.limit, f);
      else if (req.mode === "semantic") ranked = await semantic(userId, req.query, req.limit, f);
      else {
        const [kw, sem] = await Promise.all([
          keyword(userId, req.query, depth, f),
          semantic(userId, req.query, depth, f),
        ]);
        ranked = reciprocalRankFusion([kw.map((h) => h.id), sem.map((h) => h.id)], { limit: req.limit }).map(
          (h) => ({ id: h.id, score: h.score }),
        );
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
      return {
        results,
        mode: req.mode,
        took_ms: Math.round((performance.now() - started) * 100) / 100,
        ...(req.mode === "keyword"
          ? {}
          : { vector_search: deps.ann?.() ? ("pgvector" as const) : ("exact" as const) }),
      };
    },

    /** Hybrid retrieval for `ask`: the best `limit` memories with their scores. */
    async retrieve(userId: string, question: string, limit: number): Promise<SearchHit[]> {
      return (await this.search(userId, { query: question, mode: "hybrid", limit })).results;
    },
  };
}
