/**
 * The edge agent's local HTTP API (127.0.0.1:8080) request and response shapes.
 */
import { z } from "zod";
import { MemoryFilter } from "../filter.ts";
import { LocalMemory, type MemorySource } from "../memory.ts";
import { QueueCounts } from "./sync.ts";

export const RecallMode = z.enum(["auto", "keyword", "semantic", "hybrid"]);
export type RecallMode = z.infer<typeof RecallMode>;
export const RecallRoute = z.enum(["auto", "local", "vps"]);
export type RecallRoute = z.infer<typeof RecallRoute>;

/** Result limits accepted everywhere (recall, list, search): 1..100. */
export const Limit = z.coerce.number().int().min(1, "limit must be 1..100").max(100, "limit must be 1..100");

/** The header Dionysus's own clients name themselves with: `cli`, or `mcp:<client>` (the MCP
 * server going through the daemon). Any other caller of the API writes as `api`. */
export const CLIENT_HEADER = "X-Dionysus-Client";

/** The `source` of a write through this API: the CLI and the MCP server say who they are. */
export function requestSource(header: string | undefined): MemorySource {
  const v = header?.trim().toLowerCase();
  return v === "cli" || (v !== undefined && /^mcp:[a-z0-9._-]{1,64}$/.test(v)) ? v : "api";
}

/** How recall uses the time a query names ("yesterday", "in May 2023", core/time-query.ts):
 * `boost` (default) ranks the memories of that time higher (by `occurred_at`, else
 * `created_at`), `filter` keeps only them, `off` reads the query as plain words. */
export const TimeUse = z.enum(["boost", "filter", "off"]);
export type TimeUse = z.infer<typeof TimeUse>;

/** How the query's time was read: the words, the window `[since, until)` (UTC) and its use. */
export const TimeInterpretation = z.object({
  phrase: z.string(),
  since: z.string(),
  until: z.string(),
  use: z.enum(["boost", "filter"]),
});
export type TimeInterpretation = z.infer<typeof TimeInterpretation>;

/** `POST /v1/recall`. The query is user text, never FTS5 syntax. */
export const RecallRequest = z.object({
  query: z.string().trim().min(1, "query must not be empty").max(4096, "query is at most 4096 characters"),
  limit: Limit.default(10),
  mode: RecallMode.default("auto"),
  route: RecallRoute.default("auto"),
  /** Narrows the recall inside the query (see src/core/filter.ts). */
  filter: MemoryFilter.optional(),
  time: TimeUse.default("boost"),
});
export type RecallRequest = z.infer<typeof RecallRequest>;

export const RecallHit = z.object({ memory: LocalMemory, score: z.number(), snippet: z.string() });
export type RecallHit = z.infer<typeof RecallHit>;

export const RecallResponse = z.object({
  results: z.array(RecallHit),
  routed: z.enum(["local", "vps", "cache"]),
  took_ms: z.number(),
  degraded: z.boolean().optional(),
  reason: z.string().optional(),
  /** The time the query named, when it named one and `time` was not `off`. */
  time: TimeInterpretation.optional(),
});
export type RecallResponse = z.infer<typeof RecallResponse>;

/** The edge's sign-in to its VPS: none, usable, or refused (run `dionysus login` again). */
export const AuthState = z.enum(["none", "ok", "reauth_required"]);
export type AuthState = z.infer<typeof AuthState>;

/** `GET /health` on the edge. */
export const EdgeHealth = z.object({
  status: z.literal("ok"),
  version: z.string(),
  device_id: z.string(),
  online: z.boolean(),
  queue: QueueCounts,
  auth: AuthState.optional(),
});
export type EdgeHealth = z.infer<typeof EdgeHealth>;
