/** The memories part of the SQLite edge store: local reads and writes, and keyword recall. */
import {
  isEmptyFilter,
  type MemoryFilter,
  type ResolvedFilter,
  resolveFilter,
} from "../../../core/filter.ts";
import { fuseScores } from "../../../core/fusion.ts";
import {
  type LocalMemory,
  MemoryPatch,
  MemorySource,
  NewMemory,
  type NewMemoryInput,
  validateMemoryFields,
} from "../../../core/memory.ts";
import { nameFactor, queryNames } from "../../../core/names.ts";
import type { RecallHit } from "../../../core/protocol/edge-api.ts";
import { queryTokens } from "../../../core/query.ts";
import { boostWindow, eventTime, type TimeRecall, type TimeWindow } from "../../../core/time-query.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import type { LocalRecallMode, MemoryStore, WriteOptions } from "../types.ts";
import { invalid, iso, type SqliteContext } from "./context.ts";
import { type FilterSql, filterSql } from "./filter-sql.ts";
import { enqueue } from "./queue.ts";
import {
  DEFAULT_CANDIDATE_BUDGET,
  type PlanSource,
  planRecall,
  type RecallPlan,
  STOPWORDS,
} from "./recall-plan.ts";
import { MEMORY_COLUMNS, type MemoryRow, toLocalMemory, toMemoryData } from "./rows.ts";
import { sqliteVectors } from "./vectors.ts";

/** A `get()` records the access at most this often per memory, so reads rarely write. */
const TOUCH_INTERVAL_MS = 60_000;
const SNIPPET_TOKENS = 24;
/** Hybrid recall fuses the best this many of the keyword and the vector ranking (as the VPS). */
const HYBRID_DEPTH = 100;
/** Above this many memories (rowids, deleted ones included), hybrid recall scores the vectors of
 * its keyword candidates only instead of every memory's (an exact scan of 20,000 vectors takes about 3 ms, of 100,000 15–30). */
const EXACT_SCAN_MAX = 20_000;
/** How many keyword candidates a prefiltered hybrid recall scores by vector (on the LoCoMo dev
 * conversations 300 ranked within 0.1 point of R@10 of a full scan). */
const HYBRID_CANDIDATES = 300;
/** A time window whose memories span fewer rowids than this is ranked over that range (see
 * keywordRanked). */
const WINDOW_SPAN_MAX = 20_000;
/** A time window holding at least this share of the memories is boosted within one deeper
 * ranking of the store (see recall). */
const WIDE_WINDOW_SHARE = 0.05;
/** Memories sampled (spread evenly over the rowids) to estimate a window's share of the store. */
const WINDOW_SAMPLE = 64;

/** A ranked row of a recall: rowid, score, and its snippet when it was made with the ranking. */
type Ranked = { r: number; score: number; s?: string | null };

/** The query's words (stopwords dropped when there are others) OR-ed: the unpruned match. */
function everyWord(query: string): string {
  const all = queryTokens(query);
  const meaningful = all.filter((t) => !STOPWORDS.has(t));
  return (meaningful.length > 0 ? meaningful : all).map((t) => `"${t}"`).join(" OR ");
}

/** Whether a plan leaves matching memories out: its common words only re-rank the memories the
 * rare ones find (`… NOT …`), or it ranks only the newest matches (`minRowid`). */
const pruned = (plan: RecallPlan) => plan.minRowid !== undefined || plan.match.includes(" NOT ");

export function sqliteMemories(ctx: SqliteContext): MemoryStore {
  const { q, guard, write } = ctx;
  const vectors = sqliteVectors(ctx);

  /** Document counts for the recall plan. */
  const planSource: PlanSource = {
    countCapped: (token, cap) =>
      (
        q("SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)").get(
          `"${token}"`,
          cap,
        ) as { n: number }
      ).n,
    countInWindow: (match, minRowid, cap) =>
      (
        q(
          "SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? LIMIT ?)",
        ).get(match, minRowid, cap) as { n: number }
      ).n,
    maxRowid: () => (q("SELECT coalesce(max(rid), 0) AS n FROM memories").get() as { n: number }).n,
  };
  const SNIPPET = `snippet(memories_fts, 0, '**', '**', '…', ${SNIPPET_TOKENS})`;
  /** The ranked matches of `plan` (rowid, score, snippet unless `snippets` is false), narrowed by
   * `f` when given. */
  const rank = (plan: RecallPlan, limit: number, f?: FilterSql, snippets = true) =>
    (f === undefined
      ? q(
          `SELECT rowid AS r, -rank AS score, ${snippets ? SNIPPET : "NULL"} AS s
           FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? ORDER BY rank LIMIT ?`,
        ).all(plan.match, plan.minRowid ?? 0, limit)
      : q(
          `SELECT memories_fts.rowid AS r, -memories_fts.rank AS score,
                  ${snippets ? SNIPPET : "NULL"} AS s
           FROM memories_fts JOIN memories AS m ON m.rid = memories_fts.rowid
           WHERE memories_fts MATCH ? AND memories_fts.rowid >= ? AND m.deleted = 0${f.sql}
           ORDER BY memories_fts.rank LIMIT ?`,
        ).all(plan.match, plan.minRowid ?? 0, ...f.params, limit)) as {
      r: number;
      score: number;
      s: string | null;
    }[];

  const resolved = (filter: MemoryFilter | undefined): ResolvedFilter =>
    resolveFilter(filter, new Date(ctx.now()));

  /** The snippet of memory `r` for the query's words, or null when it has none of them. */
  const snippetOf = (query: string, r: number): string | null => {
    const match = everyWord(query);
    if (!match) return null;
    const row = q(`SELECT ${SNIPPET} AS s FROM memories_fts WHERE memories_fts MATCH ? AND rowid = ?`).get(
      match,
      r,
    ) as { s: string } | null;
    return row?.s ?? null;
  };

  /** `ranked` with each keyword score multiplied by its memory's name factor (core/names.ts),
   * best first again. */
  const boostNames = <H extends { r: number; score: number }>(ranked: H[], names: readonly string[]): H[] => {
    const content = q("SELECT content FROM memories WHERE rid = ?");
    return ranked
      .map((h) => ({
        ...h,
        score: h.score * nameFactor(names, (content.get(h.r) as { content: string }).content),
      }))
      .sort((a, b) => b.score - a.score);
  };

  /** The share of the store a time window holds when it is WIDE_WINDOW_SHARE or more (see
   * wideWindowRecall), else undefined. */
  function wideShare(fw: FilterSql, window: TimeWindow): number | undefined {
    // A window far shorter than the time the store spans cannot hold much of it (unless the
    // memories crowd into it): not worth sampling.
    const span = q(
      `SELECT (SELECT event_at FROM memories AS m INDEXED BY memories_event_at WHERE m.deleted = 0
               ORDER BY event_at LIMIT 1) AS lo,
              (SELECT event_at FROM memories AS m INDEXED BY memories_event_at WHERE m.deleted = 0
               ORDER BY event_at DESC LIMIT 1) AS hi`,
    ).get() as { lo: string | null; hi: string | null };
    const covered = Date.parse(span.hi ?? "") - Date.parse(span.lo ?? "");
    if (
      covered > 0 &&
      (Date.parse(window.until) - Date.parse(window.since)) / covered < WIDE_WINDOW_SHARE / 5
    )
      return undefined;
    const share = windowShare(fw);
    return share < WIDE_WINDOW_SHARE ? undefined : share;
  }

  /** The share of the live memories a filter (a time window) lets through, estimated from
   * WINDOW_SAMPLE rowids spread evenly over the store (exact on a store that small). */
  function windowShare(f: FilterSql): number {
    const max = planSource.maxRowid();
    const step = Math.max(1, Math.floor(max / WINDOW_SAMPLE));
    const rids: number[] = [];
    for (let r = step; r <= max; r += step) rids.push(r);
    const row = q(
      `SELECT count(*) AS n, coalesce(sum(CASE WHEN 1 = 1${f.sql} THEN 1 ELSE 0 END), 0) AS k
       FROM memories AS m WHERE m.rid IN (SELECT value FROM json_each(?)) AND m.deleted = 0`,
    ).get(...f.params, JSON.stringify(rids)) as { n: number; k: number };
    return row.n === 0 ? 0 : row.k / row.n;
  }

  /** Keyword recall's ranked rows (FTS5 bm25), narrowed by `f`. */
  function keywordRanked(query: string, limit: number, f: FilterSql | undefined, snippets = true) {
    // (The queries driven by the window name the event_at index: the planner otherwise picks the
    // index on deleted and reads every memory.)
    // A time window whose memories lie within WINDOW_SPAN_MAX consecutive rowids (memories are
    // mostly written in the order they happened): rank every word of the query over that rowid
    // range only (FTS5 seeks to it in each word's list), instead of ranking the matches of the
    // whole store and keeping the window's.
    if (f?.window) {
      const span = q(
        `SELECT min(m.rid) AS lo, max(m.rid) AS hi FROM memories AS m INDEXED BY memories_event_at WHERE m.deleted = 0${f.sql}`,
      ).get(...f.params) as { lo: number | null; hi: number | null };
      if (span.lo === null || span.hi === null) return [];
      if (span.hi - span.lo < WINDOW_SPAN_MAX) {
        const match = everyWord(query);
        if (!match) return [];
        return q(
          `SELECT memories_fts.rowid AS r, -memories_fts.rank AS score, ${snippets ? SNIPPET : "NULL"} AS s
           FROM memories_fts JOIN memories AS m ON m.rid = memories_fts.rowid
           WHERE memories_fts MATCH ? AND memories_fts.rowid >= ? AND memories_fts.rowid <= ?
             AND m.deleted = 0${f.sql}
           ORDER BY memories_fts.rank LIMIT ?`,
        ).all(match, span.lo, span.hi, ...f.params, limit) as {
          r: number;
          score: number;
          s: string | null;
        }[];
      }
    }
    const plan = planRecall(query, planSource);
    if (!plan) return [];
    // FTS5 ranks (ORDER BY rank is answered by the index) and makes snippets for the rows it
    // returns only; the memories are then read by rowid. A filter joins the memories in the
    // same query, so only the matches that pass it are ranked for the LIMIT.
    let ranked = rank(plan, limit, f, snippets);
    // The plan chose its candidates by how common each word is in the whole store. When it
    // left some memories out (common words only re-ranked, or only the newest were ranked) and
    // the filter did not fill the page from the rest, rank every memory with any of the words
    // among those the filter lets through: a narrow filter then still gets a full page (this
    // costs what an unpruned ranking of those words costs).
    // (Not for a wide time window: it is a large part of the store, not a narrow filter, and a
    // boost ranks every memory besides.)
    if (f && !f.window && ranked.length < limit && pruned(plan))
      ranked = rank({ match: everyWord(query) }, limit, f, snippets);
    return ranked;
  }

  return {
    embedPending: (maxMs: number) => vectors.embedPending(maxMs),

    create(input: NewMemoryInput, options: WriteOptions = {}): LocalMemory {
      const parsed = NewMemory.safeParse(input);
      if (!parsed.success) throw invalid(parsed.error.issues);
      const data = parsed.data;
      validateMemoryFields(data, ctx.maxContentBytes);
      const source = MemorySource.safeParse(options.source ?? "unknown");
      if (!source.success) throw invalid(source.error.issues.map((i) => ({ ...i, path: ["source"] })));
      return write(() => {
        const hlc = ctx.stamp();
        const now = ctx.clockNow();
        const at = iso(now);
        const memory: LocalMemory = {
          id: uuidv7(now),
          content: data.content,
          kind: data.kind,
          tags: data.tags,
          metadata: data.metadata,
          embedding: null,
          created_at: at,
          updated_at: at,
          hlc,
          deleted: false,
          origin_device: ctx.currentDeviceId,
          scope: data.scope ?? null,
          source: source.data,
          occurred_at: data.occurred_at ?? null,
          origin: "local",
          private: data.private,
          synced_at: null,
          last_accessed_at: null,
        };
        q(
          `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                                 deleted, origin_device, origin, scope, source, occurred_at, private,
                                 synced_at, last_accessed_at)
           VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, ?, 'local', ?, ?, ?, ?, NULL, NULL)`,
        ).run(
          memory.id,
          memory.content,
          memory.kind,
          JSON.stringify(memory.tags),
          JSON.stringify(memory.metadata),
          at,
          at,
          hlc,
          ctx.currentDeviceId,
          memory.scope,
          source.data,
          memory.occurred_at,
          memory.private ? 1 : 0,
        );
        // A private memory is never queued: it takes no mutation number, so the numbers the VPS
        // sees stay gapless.
        if (!memory.private) enqueue(ctx, memory.id, "create", hlc, null, toMemoryData(memory));
        return memory;
      });
    },

    get(id: string): LocalMemory | undefined {
      return guard(() => {
        const row = ctx.rowById(id);
        if (!row || row.deleted === 1) return undefined;
        const now = ctx.now();
        const last = row.last_accessed_at ? Date.parse(row.last_accessed_at) : 0;
        if (now - last >= TOUCH_INTERVAL_MS) {
          try {
            q("UPDATE memories SET last_accessed_at = ? WHERE rid = ?").run(iso(now), row.rid);
            row.last_accessed_at = iso(now);
          } catch {
            // Recording the access is best effort: a read never fails because another process
            // holds the write lock.
          }
        }
        return toLocalMemory(row);
      });
    },

    update(id: string, patch: MemoryPatch): LocalMemory {
      const parsed = MemoryPatch.safeParse(patch);
      if (!parsed.success) throw invalid(parsed.error.issues);
      const p = parsed.data;
      validateMemoryFields(p, ctx.maxContentBytes);
      return write(() => {
        const row = ctx.liveRow(id);
        const current = toLocalMemory(row);
        const wasPrivate = current.private;
        const nowPrivate = p.private ?? wasPrivate;
        // Shared → private: the VPS gets a delete (its own stamp, below the local version's), and
        // the local copy stays. Its stamp becomes the base a later "share again" is written on.
        let tombstone: string | undefined;
        if (!wasPrivate && nowPrivate) {
          tombstone = ctx.stamp();
          enqueue(ctx, id, "delete", tombstone, current.hlc, null);
        }
        const hlc = ctx.stamp();
        const at = iso(ctx.clockNow());
        const next: LocalMemory = {
          ...current,
          content: p.content ?? current.content,
          kind: p.kind ?? current.kind,
          tags: p.tags ?? current.tags,
          metadata: p.metadata ?? current.metadata,
          scope: p.scope !== undefined ? p.scope : current.scope,
          occurred_at: p.occurred_at !== undefined ? p.occurred_at : current.occurred_at,
          private: nowPrivate,
          updated_at: at,
          hlc,
          origin: "local",
          synced_at: null,
        };
        // The version the VPS last saw (or will see) of this memory: a shared write is based on it.
        const base = tombstone ?? (wasPrivate ? row.base_hlc : current.hlc);
        q(
          `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, scope = ?, occurred_at = ?,
                               private = ?, updated_at = ?, hlc = ?, base_hlc = ?, origin = 'local',
                               synced_at = NULL, embedding = CASE WHEN content = ? THEN embedding END
           WHERE id = ?`,
        ).run(
          next.content,
          next.kind,
          JSON.stringify(next.tags),
          JSON.stringify(next.metadata),
          next.scope,
          next.occurred_at,
          nowPrivate ? 1 : 0,
          at,
          hlc,
          base,
          next.content,
          id,
        );
        // A vector describes the content it was made from.
        if (next.content !== current.content) next.embedding = null;
        // Private → shared is sent like a new write: a create when the VPS never had it.
        if (!nowPrivate) enqueue(ctx, id, base === null ? "create" : "update", hlc, base, toMemoryData(next));
        return next;
      });
    },

    delete(id: string): void {
      write(() => {
        const row = ctx.liveRow(id);
        const hlc = ctx.stamp();
        const at = iso(ctx.clockNow());
        // A private memory's delete stays here too: it was never sent (or the VPS already had a
        // delete when it turned private).
        const base = row.private === 1 ? row.base_hlc : row.hlc;
        q(
          `UPDATE memories SET content = '', tags = '[]', metadata = '{}', embedding = NULL, deleted = 1,
                               updated_at = ?, hlc = ?, base_hlc = ?, origin = 'local', synced_at = NULL
           WHERE id = ?`,
        ).run(at, hlc, base, id);
        // Unsynced writes keep their payload: the VPS still has to receive them in order (synced
        // rows hold none).
        if (row.private !== 1) enqueue(ctx, id, "delete", hlc, base, null);
      });
    },

    recent(limit: number, filter?: MemoryFilter): LocalMemory[] {
      return guard(() => {
        const f = filterSql(resolved(filter));
        return (
          q(
            `SELECT ${MEMORY_COLUMNS} FROM memories AS m WHERE m.deleted = 0${f.sql}
             ORDER BY m.updated_at DESC, m.rid DESC LIMIT ?`,
          ).all(...f.params, limit) as MemoryRow[]
        ).map(toLocalMemory);
      });
    },

    recall(
      query: string,
      limit: number,
      filter?: MemoryFilter,
      mode: LocalRecallMode = "keyword",
      time?: TimeRecall,
    ): RecallHit[] {
      return guard(() => {
        const rf = resolved(filter);
        if (!time) return recallIn(query, limit, rf, mode);
        const within: ResolvedFilter = { ...rf, window: time.window };
        if (time.use === "filter") return recallIn(time.rest, limit, within, mode, true);
        // A window no memory (of those the filter lets through) falls in: a wrong guess, the
        // ranking is the one without it.
        const fw = filterSql(within);
        if (
          !q(
            `SELECT 1 FROM memories AS m INDEXED BY memories_event_at WHERE m.deleted = 0${fw.sql} LIMIT 1`,
          ).get(...fw.params)
        )
          return recallIn(query, limit, rf, mode);
        // A time phrase alone ("yesterday") has no words to rank every memory by.
        // Snippets are made for the answer only (FTS5 makes one for every row it sorts).
        const words = queryTokens(time.rest).length > 0;
        const snippetsInside = mode !== "keyword";
        const withSnippets = (hits: RecallHit[]) => {
          const ridOf = q("SELECT rid FROM memories WHERE id = ?");
          return hits.map((h) => {
            const rid = (ridOf.get(h.memory.id) as { rid: number } | null)?.rid;
            const snippet = rid === undefined ? null : snippetOf(time.rest, rid);
            return snippet ? { ...h, snippet } : h;
          });
        };
        // A window that is a large share of the store (a year of it): the store's best matches,
        // ranked deep enough, hold the window's best; boosting within that one ranking answers
        // what ranking the window apart would (when it holds a page of the window's), at the
        // cost of one ranking instead of two, the second over a third of the store.
        // (Hybrid too on a store large enough that it ranks keyword candidates only.)
        const largeHybrid = mode === "hybrid" && planSource.maxRowid() > EXACT_SCAN_MAX;
        const share = words && (mode === "keyword" || largeHybrid) ? wideShare(fw, time.window) : undefined;
        if (share !== undefined) {
          // The depth holds 3 pages of the window's memories on average; when it holds fewer
          // than a page, the page is filled from the store's next best, as a boost ranks them.
          const depth = Math.min(
            mode === "keyword" ? DEFAULT_CANDIDATE_BUDGET : HYBRID_CANDIDATES,
            Math.ceil((limit * 3) / share),
          );
          const f = isEmptyFilter(rf) ? undefined : filterSql(rf);
          const ranked = rankIn(time.rest, depth, f, mode, false);
          const at = new Map(
            (
              q(
                `SELECT m.rid AS r, m.event_at AS e FROM memories AS m WHERE m.rid IN (SELECT value FROM json_each(?))`,
              ).all(JSON.stringify(ranked.map((h) => h.r))) as { r: number; e: string | null }[]
            ).map((x) => [x.r, x.e]),
          );
          const top = boostWindow(ranked, [], {
            key: (h) => String(h.r),
            at: (h) => at.get(h.r) ?? "",
            window: time.window,
            limit,
          });
          return toHits(top.map((h) => ({ ...h, s: snippetOf(time.rest, h.r) })));
        }
        const hits = boostWindow(
          words ? recallIn(time.rest, limit, rf, mode, false, snippetsInside) : [],
          recallIn(time.rest, limit, within, mode, true, snippetsInside),
          {
            key: (h) => h.memory.id,
            at: (h) => eventTime(h.memory),
            window: time.window,
            limit,
          },
        );
        if (snippetsInside || !words) return hits;
        return withSnippets(hits);
      });
    },

    countMemories(): number {
      return guard(
        () => (q("SELECT count(*) AS n FROM memories WHERE deleted = 0").get() as { n: number }).n,
      );
    },
  };

  /** A recall narrowed by a resolved filter. `newestIfNoWords`: a query with no words to rank
   * (a time phrase alone, "yesterday") answers the newest memories the filter lets through. */
  function recallIn(
    query: string,
    limit: number,
    rf: ResolvedFilter,
    mode: LocalRecallMode,
    newestIfNoWords = false,
    snippets = true,
  ): RecallHit[] {
    const f = isEmptyFilter(rf) ? undefined : filterSql(rf);
    if (newestIfNoWords && queryTokens(query).length === 0) {
      const ff = f ?? { sql: "", params: [] };
      return (
        q(
          `SELECT ${MEMORY_COLUMNS} FROM memories AS m INDEXED BY memories_event_at
           WHERE m.deleted = 0${ff.sql} ORDER BY m.event_at DESC, m.rid DESC LIMIT ?`,
        ).all(...ff.params, limit) as MemoryRow[]
      ).map((row, i) => ({
        memory: toLocalMemory(row),
        score: 1 / (i + 1),
        snippet: row.content.slice(0, 200),
      }));
    }
    return toHits(rankIn(query, limit, f, mode, snippets));
  }

  /** The ranked rows of a recall (rowid, score, snippet when `snippets`), narrowed by `f`. */
  function rankIn(
    query: string,
    limit: number,
    f: FilterSql | undefined,
    mode: LocalRecallMode,
    snippets: boolean,
  ): Ranked[] {
    let ranked: Ranked[];
    if (mode === "keyword") {
      // A question that names someone: rank twice the page without snippets, boost the
      // memories that name them (core/names.ts), keep the page, then make its snippets.
      const names = queryNames(query);
      ranked =
        names.length > 0
          ? boostNames(keywordRanked(query, limit * 2, f, false), names)
              .slice(0, limit)
              .map((h) => ({ ...h, s: snippets ? snippetOf(query, h.r) : null }))
          : keywordRanked(query, limit, f, snippets);
    } else {
      const allowed = () =>
        f
          ? new Set(
              (
                q(`SELECT rid FROM memories AS m WHERE m.deleted = 0${f.sql}`).all(...f.params) as {
                  rid: number;
                }[]
              ).map((x) => x.rid),
            )
          : undefined;
      if (mode === "semantic") ranked = vectors.search(query, limit, allowed());
      else {
        const depth = Math.max(limit, HYBRID_DEPTH);
        // On a large store the vectors rank the keyword candidates only (see EXACT_SCAN_MAX).
        const prefilter = planSource.maxRowid() > EXACT_SCAN_MAX;
        const candidates = keywordRanked(
          query,
          prefilter ? Math.max(depth, HYBRID_CANDIDATES) : depth,
          f,
          false,
        );
        const names = queryNames(query);
        const kw =
          names.length > 0 ? boostNames(candidates.slice(0, depth), names) : candidates.slice(0, depth);
        const sem = prefilter
          ? vectors.searchAmong(
              query,
              depth,
              candidates.map((h) => h.r),
            )
          : vectors.search(query, depth, allowed());
        ranked = fuseScores(
          kw.map((h) => ({ id: String(h.r), score: h.score })),
          sem.map((h) => ({ id: String(h.r), score: h.score })),
          { limit },
        ).map((h) => ({
          r: Number(h.id),
          score: h.score,
          s: snippets ? snippetOf(query, Number(h.id)) : null,
        }));
      }
    }
    return ranked;
  }

  /** The live memories of ranked rows, in order, with their snippets (else the content's start). */
  function toHits(ranked: readonly Ranked[]): RecallHit[] {
    const byRid = q(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE rid = ? AND deleted = 0`);
    const hits: RecallHit[] = [];
    for (const h of ranked) {
      const row = byRid.get(h.r) as MemoryRow | null;
      if (!row) continue;
      hits.push({
        memory: toLocalMemory(row),
        score: h.score,
        snippet: h.s || row.content.slice(0, 200),
      });
    }
    return hits;
  }
}
