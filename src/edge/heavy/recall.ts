/**
 * `POST /v1/recall` on the edge: where a recall runs is decided by
 * `planRecall` (src/core/router.ts): keyword queries on local SQLite; semantic and hybrid ones on
 * the VPS, answered from the local cache while fresh; offline, needing re-authentication or with
 * the VPS failing, semantic and hybrid run on the device in the same mode (its built-in
 * embedder's vectors) and say so (`degraded: true`, `reason`), unless `route: vps` was asked,
 * which answers 503 instead. With `route: local`, or on a device never logged in to a VPS, they
 * run on the device and are not degraded.
 */
import { DionysusError, isDionysusError } from "../../core/errors.ts";
import { withDefaultScope } from "../../core/filter.ts";
import type { RecallHit, RecallRequest, RecallResponse } from "../../core/protocol/edge-api.ts";
import { fallbackRecall, planRecall, type RecallPlan } from "../../core/router.ts";
import { readTime, type TimeRecall, timeRecall } from "../../core/time-query.ts";
import type { EdgeStore, LocalRecallMode } from "../store/types.ts";
import type { VpsQueryClient } from "./service.ts";

/** Without a VPS link: never logged in, a local-only device. */
const NO_VPS = { online: false, authenticated: false, linked: false };

/** A memory without its vector (large, and not what a list or a search asked for). */
export function withoutVector<M extends { embedding?: number[] | null | undefined }>(m: M): M {
  if (m.embedding === undefined) return m;
  const { embedding: _e, ...rest } = m;
  return rest as M;
}

function bare(hits: RecallHit[]): RecallHit[] {
  return hits.map((h) => (h.memory.embedding === undefined ? h : { ...h, memory: withoutVector(h.memory) }));
}

/** `local` runs the keyword recall on this device; `req.filter` goes with the request to the VPS
 * (the caller passes it to `local` too). */
export async function routeRecall(
  req: RecallRequest,
  local: (query: string, limit: number, mode: LocalRecallMode, time?: TimeRecall) => RecallHit[],
  heavy: VpsQueryClient | undefined,
  now: () => Date = () => new Date(),
): Promise<RecallResponse> {
  const started = performance.now();
  const took = () => Math.round((performance.now() - started) * 100) / 100;
  // The time the query names, read in UTC against this device's clock (the VPS reads it alike).
  const use = req.time ?? "boost";
  const reading = use === "off" ? undefined : readTime(req.query, now());
  const time: Pick<RecallResponse, "time"> =
    reading && use !== "off"
      ? { time: { phrase: reading.phrase, since: reading.since, until: reading.until, use } }
      : {};
  let plan: RecallPlan = planRecall(req, heavy?.state() ?? NO_VPS);
  if (plan.where === "vps" && heavy) {
    try {
      const answer = await heavy.search({
        query: req.query,
        mode: plan.mode,
        limit: req.limit,
        ...(req.filter ? { filter: req.filter } : {}),
        ...(use !== "boost" ? { time: use } : {}),
      });
      return { results: answer.hits, routed: answer.cached ? "cache" : "vps", took_ms: took(), ...time };
    } catch (err) {
      // Our own request being refused is not a reason to answer something else.
      if (isDionysusError(err) && err.code === "invalid_input") throw err;
      plan = fallbackRecall(plan, req.route, err instanceof Error ? err.message : String(err));
    }
  }
  if (plan.where === "unavailable")
    throw new DionysusError("unavailable", plan.message, { details: { reason: plan.reason } });
  const results = bare(
    local(req.query, req.limit, plan.where === "local" ? plan.mode : "keyword", timeRecall(reading, use)),
  );
  const body: RecallResponse = { results, routed: "local", took_ms: took(), ...time };
  if (plan.where === "local" && plan.degraded) {
    body.degraded = true;
    body.reason = plan.message;
  }
  return body;
}

/**
 * A recall on this device's store, or on the VPS where the plan sends it: the default scope
 * narrows a filter that names no scope, and the store answers in the mode the plan runs on the
 * device. The local API, the daemon's MCP server and the CLI's direct client all recall here.
 */
export function recallOnDevice(
  store: Pick<EdgeStore, "recall">,
  asked: Pick<RecallRequest, "query" | "limit" | "filter"> &
    Partial<Pick<RecallRequest, "mode" | "route" | "time">>,
  defaultScope: string | null | undefined,
  heavy: VpsQueryClient | undefined,
): Promise<RecallResponse> {
  const filter = withDefaultScope(asked.filter, defaultScope);
  const req: RecallRequest = {
    query: asked.query,
    limit: asked.limit,
    mode: asked.mode ?? "auto",
    route: asked.route ?? "auto",
    time: asked.time ?? "boost",
    ...(filter ? { filter } : {}),
  };
  return routeRecall(req, (q, n, mode, time) => store.recall(q, n, filter, mode, time), heavy);
}
