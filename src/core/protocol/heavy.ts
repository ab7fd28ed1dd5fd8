/**
 * Wire schemas of the heavy endpoints on the VPS (docs/heavy.md): search, graph query, consolidation
 * jobs and ask. The VPS validates requests with them and the edge parses answers with them.
 */
import { z } from "zod";
import { MemoryFilter } from "../filter.ts";
import { Memory, Timestamp } from "../memory.ts";
import { Limit, TimeInterpretation, TimeUse } from "./edge-api.ts";

/** How `POST /v1/search` ranks: Postgres full-text search, vector similarity, or both fused by
 * reciprocal rank fusion. */
export const SearchMode = z.enum(["keyword", "semantic", "hybrid"]);
export type SearchMode = z.infer<typeof SearchMode>;

/** Query text is user text (never tsquery syntax): 1..4096 characters after trimming. */
export const QueryText = z
  .string()
  .trim()
  .min(1, "query must not be empty")
  .max(4096, "query is at most 4096 characters")
  .refine((s) => !s.includes("\u0000"), "query must not contain NUL");

/** `POST /v1/search`. */
export const SearchRequest = z.object({
  query: QueryText,
  mode: SearchMode.default("hybrid"),
  limit: Limit.default(10),
  /** Narrows the search inside the query (see src/core/filter.ts). */
  filter: MemoryFilter.optional(),
  /** How the time the query names is used (see `TimeUse`; default `boost`). */
  time: TimeUse.default("boost"),
});
export type SearchRequest = z.infer<typeof SearchRequest>;
/** A search as a caller asks it: `time` may be left out (`boost`). */
export type SearchAsk = Omit<SearchRequest, "time"> & { time?: TimeUse };

/** One search result. `score` is higher for better matches; its scale depends on the mode
 * (ts_rank for keyword, cosine similarity for semantic, fused RRF score for hybrid). */
export const SearchHit = z.object({
  memory: Memory,
  score: z.number(),
  snippet: z.string(),
});
export type SearchHit = z.infer<typeof SearchHit>;

export const SearchResponse = z.object({
  results: z.array(SearchHit),
  mode: SearchMode,
  took_ms: z.number(),
  /** How vectors were compared: `pgvector` index or `exact` scan (semantic and hybrid only). */
  vector_search: z.enum(["pgvector", "exact"]).optional(),
  /** The time the query named, when it named one and `time` was not `off`. */
  time: TimeInterpretation.optional(),
});
export type SearchResponse = z.infer<typeof SearchResponse>;

export const EntityType = z.enum(["person", "place", "organization", "topic"]);
export type EntityType = z.infer<typeof EntityType>;

/** Deepest graph traversal allowed, in hops. */
export const MAX_GRAPH_DEPTH = 3;

/** `POST /v1/graph/query`. The entity name is matched case-insensitively. */
export const GraphQueryRequest = z.object({
  entity: z
    .string()
    .trim()
    .min(1, "entity must not be empty")
    .max(200, "entity is at most 200 characters")
    .refine((s) => !s.includes("\u0000"), "entity must not contain NUL"),
  depth: z.coerce
    .number()
    .int()
    .min(1, `depth must be 1..${MAX_GRAPH_DEPTH}`)
    .max(MAX_GRAPH_DEPTH, `depth must be 1..${MAX_GRAPH_DEPTH}`)
    .default(1),
  limit: Limit.default(20),
  /** Narrows the memories answered (read from the memories table with it); the nodes and edges
   * are the graph's, whatever the filter. */
  filter: MemoryFilter.optional(),
});
export type GraphQueryRequest = z.infer<typeof GraphQueryRequest>;

export const GraphNode = z.object({
  id: z.string(),
  name: z.string(),
  type: EntityType,
  /** Hops from the queried entity (0 for itself). */
  depth: z.number().int().nonnegative(),
  /** How many memories mention it. */
  mentions: z.number().int().nonnegative(),
});
export type GraphNode = z.infer<typeof GraphNode>;

export const GraphEdge = z.object({
  from: z.string(),
  to: z.string(),
  type: z.string(),
  /** How many memories support the relation. */
  weight: z.number().nonnegative(),
});
export type GraphEdge = z.infer<typeof GraphEdge>;

/** A memory behind the returned nodes, with the ids of the nodes it mentions. */
export const GraphMemory = z.object({
  memory: Memory,
  entities: z.array(z.string()),
});
export type GraphMemory = z.infer<typeof GraphMemory>;

/** Unknown entity: all three lists empty (not an error). */
export const GraphQueryResponse = z.object({
  nodes: z.array(GraphNode),
  edges: z.array(GraphEdge),
  memories: z.array(GraphMemory),
});
export type GraphQueryResponse = z.infer<typeof GraphQueryResponse>;

export const JobKind = z.enum(["consolidate"]);
export type JobKind = z.infer<typeof JobKind>;

export const JobStatus = z.enum(["queued", "running", "done", "failed"]);
export type JobStatus = z.infer<typeof JobStatus>;

/** A background job on the VPS (`GET /v1/jobs/:id`). `result` is set when `done`, `error` when
 * `failed`. */
export const Job = z.object({
  id: z.uuid(),
  kind: JobKind,
  status: JobStatus,
  created_at: Timestamp,
  finished_at: Timestamp.nullable(),
  result: z.record(z.string(), z.unknown()).nullable(),
  error: z.string().nullable(),
});
export type Job = z.infer<typeof Job>;

/** `result` of a finished consolidation job. */
export const ConsolidationResult = z.object({
  /** Groups of duplicate or near-duplicate memories merged into one survivor each. */
  merged_groups: z.number().int().nonnegative(),
  /** Memories that became tombstones pointing to their survivor. */
  tombstoned: z.number().int().nonnegative(),
  /** The summary memory written, if any. */
  summary_memory_id: z.uuid().nullable(),
  /** Memories whose graph entities were refreshed. */
  graph_refreshed: z.number().int().nonnegative(),
});
export type ConsolidationResult = z.infer<typeof ConsolidationResult>;

/** `POST /v1/consolidate` answer. While a consolidation of the user is queued or running, a new
 * request answers that job with `started: false` instead of starting a second one. */
export const ConsolidateResponse = z.object({
  job: Job,
  started: z.boolean(),
});
export type ConsolidateResponse = z.infer<typeof ConsolidateResponse>;

/** `POST /v1/ask`. */
export const AskRequest = z.object({
  question: z
    .string()
    .trim()
    .min(1, "question must not be empty")
    .max(4096, "question is at most 4096 characters")
    .refine((s) => !s.includes("\u0000"), "question must not contain NUL"),
  /** How many memories to retrieve (hybrid search) as context. */
  limit: Limit.default(8),
});
export type AskRequest = z.infer<typeof AskRequest>;

/**
 * One event of the streamed `POST /v1/ask` answer (one JSON object per line): first `sources`
 * (the memories given to the model), then `delta`s of answer text, then `done`, or `error` if the
 * model failed midway.
 */
export const AskEvent = z.discriminatedUnion("type", [
  z.object({ type: z.literal("sources"), memories: z.array(z.object({ id: z.uuid(), score: z.number() })) }),
  z.object({ type: z.literal("delta"), text: z.string() }),
  z.object({ type: z.literal("done") }),
  z.object({ type: z.literal("error"), code: z.string(), message: z.string() }),
]);
export type AskEvent = z.infer<typeof AskEvent>;
