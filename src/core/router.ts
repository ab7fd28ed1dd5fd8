/**
 * Query routing (docs/architecture.md "Routing", docs/heavy.md "Routing"): pure decisions about where a request runs.
 * By-id, recent and keyword queries run on local SQLite; semantic and hybrid search, graph
 * traversal, consolidation and LLM questions run on the VPS. The edge asks {@link planRecall}
 * before a recall, {@link fallbackRecall} when the VPS call then fails, and
 * {@link classifyOperation} for everything else.
 */
import type { RecallMode, RecallRequest, RecallRoute } from "./protocol/edge-api.ts";
import { queryTokens } from "./query.ts";

/** What the edge knows about its link to the VPS when it decides. */
export interface EdgeState {
  /** The VPS was reachable at the last attempt (the sync engine's view). */
  online: boolean;
  /** The edge holds valid VPS credentials (logged in, not `reauth_required`). */
  authenticated: boolean;
  /** The edge holds VPS credentials at all, usable or not (it was logged in to a VPS and has not
   * logged out). False on a local-only device: there `auto` recall is plain local keyword search,
   * not a degraded one. */
  linked: boolean;
}

/** The search mode actually used, once `auto` is resolved. */
export type ResolvedMode = Exclude<RecallMode, "auto">;

/** Why a request did not go where it would have: stable codes for logs and tests. */
export type DegradeReason = "offline" | "unauthenticated" | "vps_failed";

/**
 * Where a recall runs:
 * - `local`: on the device in `mode` (keyword: SQLite FTS5; semantic and hybrid: the built-in
 *   embedder's vectors kept on the device), as asked (`degraded: false`);
 * - `local` with `degraded: true`: the VPS was wanted for a semantic or hybrid search and could
 *   not be used, so the device answers in the same mode with its built-in embedder (the VPS may
 *   have a better model), with the reason (the answer says `degraded: true` and `reason`);
 * - `vps`: `POST /v1/search` with `mode` (the edge may answer it from its cache);
 * - `unavailable`: the VPS was forced (`route: vps`) but cannot be used: answer 503.
 */
export type RecallPlan =
  | { where: "local"; mode: ResolvedMode; wanted: ResolvedMode; degraded: false }
  | {
      where: "local";
      mode: ResolvedMode;
      wanted: ResolvedMode;
      degraded: true;
      reason: DegradeReason;
      message: string;
    }
  | { where: "vps"; mode: ResolvedMode; wanted: ResolvedMode }
  | { where: "unavailable"; wanted: ResolvedMode; reason: DegradeReason; message: string };

/** Words that open a question or a request in English; a query starting with one reads as
 * natural language. */
const QUESTION_WORDS = new Set([
  "what",
  "whats",
  "whos",
  "wheres",
  "hows",
  "who",
  "whom",
  "whose",
  "when",
  "where",
  "why",
  "how",
  "which",
  "do",
  "does",
  "did",
  "is",
  "are",
  "was",
  "were",
  "can",
  "could",
  "should",
  "would",
  "will",
  "have",
  "has",
  "had",
  "tell",
  "remind",
  "explain",
  "describe",
  "summarize",
  "summarise",
]);

/** A query of at least this many words reads as a description rather than keywords. */
export const NATURAL_LANGUAGE_MIN_WORDS = 6;

/**
 * Does the query read like a natural-language question or description? True when it contains a
 * `?`, when its first word is a question or request word (what, who, when, where, why, how,
 * which, do/does/did, is/are/was/were, can/could/should/would/will, have/has/had, tell, remind,
 * explain, describe, summarize), or when it has at least {@link NATURAL_LANGUAGE_MIN_WORDS} words.
 * Otherwise it is taken as keywords. Deliberately simple so a user can predict it.
 */
export function isNaturalLanguage(query: string): boolean {
  if (query.includes("?") || query.includes("？")) return true;
  const words = query
    .normalize("NFKC")
    .toLowerCase()
    .replace(/['’]/g, "")
    .match(/[\p{L}\p{N}_]+/gu);
  if (!words || words.length === 0) return false;
  if (QUESTION_WORDS.has(words[0]!)) return true;
  return words.length >= NATURAL_LANGUAGE_MIN_WORDS;
}

/** `auto` becomes `hybrid` for natural-language queries and `keyword` otherwise. */
export function resolveMode(mode: RecallMode, query: string): ResolvedMode {
  if (mode !== "auto") return mode;
  return isNaturalLanguage(query) ? "hybrid" : "keyword";
}

const MESSAGES: Record<DegradeReason, string> = {
  offline: "the VPS is unreachable",
  unauthenticated: "this device is not logged in to a VPS",
  vps_failed: "the VPS request failed",
};

/** Why the VPS cannot be used now, or undefined when it can. */
function vpsBlocked(state: EdgeState): DegradeReason | undefined {
  if (!state.authenticated) return "unauthenticated";
  if (!state.online) return "offline";
  return undefined;
}

function degraded(wanted: ResolvedMode, reason: DegradeReason, detail?: string): RecallPlan {
  const why = detail ? `${MESSAGES[reason]}: ${detail}` : MESSAGES[reason];
  return {
    where: "local",
    mode: wanted,
    wanted,
    degraded: true,
    reason,
    message: `${wanted} search runs on the VPS and ${why}; answered on this device with its built-in embedder`,
  };
}

function unavailable(wanted: ResolvedMode, reason: DegradeReason, detail?: string): RecallPlan {
  const why = detail ? `${MESSAGES[reason]}: ${detail}` : MESSAGES[reason];
  return { where: "unavailable", wanted, reason, message: `route vps was asked but ${why}` };
}

/**
 * Decides where a recall runs. Rules, in order:
 * 1. `auto` mode resolves with {@link resolveMode}: a question (natural language) is hybrid, other
 *    queries keyword. On a device that was never logged in to a VPS the hybrid runs on the device
 *    (its built-in embedder's vectors fused with keyword search: on the LoCoMo dev questions
 *    R@10 67.6 against keyword's 64.9; at 100,000 memories it scores only the best 300 keyword
 *    candidates' vectors, see bench/RESULTS.md for its cost).
 * 2. `route: local` always runs on the device, in the mode asked (semantic and hybrid with the
 *    built-in embedder's vectors), not degraded.
 * 3. `route: vps` always goes to the VPS (any mode, keyword too); if the VPS cannot be used
 *    (not logged in, offline) the plan is `unavailable` (503), not a silent local answer.
 * 4. `route: auto`: keyword runs locally; semantic and hybrid go to the VPS (whose model may be
 *    better), or run on the device when it cannot be used: not degraded on a device that was
 *    never logged in to a VPS (`linked: false`: the device is all there is), degraded otherwise
 *    (`reason: offline | unauthenticated`; the mode is kept).
 */
export function planRecall(
  req: Pick<RecallRequest, "query" | "mode" | "route">,
  state: EdgeState,
): RecallPlan {
  const wanted = resolveMode(req.mode, req.query);
  const route: RecallRoute = req.route;
  const local = { where: "local", mode: wanted, wanted, degraded: false } as const;
  if (route === "local") return local;
  const blocked = vpsBlocked(state);
  if (route === "vps") {
    return blocked ? unavailable(wanted, blocked) : { where: "vps", mode: wanted, wanted };
  }
  if (wanted === "keyword" || !state.linked) return local;
  return blocked ? degraded(wanted, blocked) : { where: "vps", mode: wanted, wanted };
}

/**
 * What to do when a `vps` plan's request failed (network error, timeout, 5xx): with `route: auto`
 * answer on the device in the same mode, degraded (`reason: vps_failed`, with `detail`); with
 * `route: vps` the answer is `unavailable`.
 */
export function fallbackRecall(
  plan: Extract<RecallPlan, { where: "vps" }>,
  route: RecallRoute,
  detail?: string,
): RecallPlan {
  return route === "vps"
    ? unavailable(plan.wanted, "vps_failed", detail)
    : degraded(plan.wanted, "vps_failed", detail);
}

/** Operations other than recall. */
export type Operation = "by_id" | "recent" | "keyword" | "graph" | "consolidate" | "ask";

export type OperationPlan =
  | { where: "local" }
  | { where: "vps" }
  | { where: "unavailable"; reason: DegradeReason; message: string };

const OPERATION_NAMES: Record<Operation, string> = {
  by_id: "reading by id",
  recent: "listing recent memories",
  keyword: "keyword search",
  graph: "graph queries",
  consolidate: "consolidation",
  ask: "questions to the LLM",
};

/**
 * By-id reads, recent lists and keyword search run locally; graph queries, consolidation and LLM
 * questions always run on the VPS and are `unavailable` (503) when it cannot be used: they have
 * no local fallback.
 */
export function classifyOperation(op: Operation, state: EdgeState): OperationPlan {
  if (op === "by_id" || op === "recent" || op === "keyword") return { where: "local" };
  const blocked = vpsBlocked(state);
  if (!blocked) return { where: "vps" };
  return {
    where: "unavailable",
    reason: blocked,
    message: `${OPERATION_NAMES[op]} run on the VPS and ${MESSAGES[blocked]}`,
  };
}

/** Normalises query text for cache keys: NFKC, lower case, the word tokens joined by one space,
 * so "Coffee  with ANA?" and "coffee with ana" share a key. */
export function normalizeQueryText(query: string): string {
  return queryTokens(query).join(" ");
}

/**
 * The cache key of a VPS recall: resolved mode, limit and normalised query, under an optional
 * scope (the user id or VPS URL, so that one edge's caches for two accounts never mix). Requests
 * that differ only in case, spacing, punctuation or `route` share a key.
 */
export function recallCacheKey(
  req: { query: string; mode: ResolvedMode; limit: number; filter?: object; time?: string },
  scope = "",
): string {
  const filter = req.filter && Object.keys(req.filter).length > 0 ? `|${JSON.stringify(req.filter)}` : "";
  const time = req.time && req.time !== "boost" ? `|time=${req.time}` : "";
  return `v1|${scope}|recall|${req.mode}|${req.limit}|${normalizeQueryText(req.query)}${filter}${time}`;
}

/** The cache key of a VPS graph query: normalised entity name, depth and limit. */
export function graphCacheKey(
  req: { entity: string; depth: number; limit: number; filter?: object },
  scope = "",
): string {
  const entity = req.entity.normalize("NFKC").toLowerCase().trim().replace(/\s+/g, " ");
  const filter = req.filter && Object.keys(req.filter).length > 0 ? `|${JSON.stringify(req.filter)}` : "";
  return `v1|${scope}|graph|${req.depth}|${req.limit}|${entity}${filter}`;
}

/** Is an entry stored at `storedAtMs` still fresh at `nowMs` with a TTL of `ttlS` seconds?
 * A TTL of 0 disables the cache. */
export function isFresh(storedAtMs: number, ttlS: number, nowMs: number): boolean {
  return ttlS > 0 && nowMs >= storedAtMs && nowMs - storedAtMs < ttlS * 1000;
}
