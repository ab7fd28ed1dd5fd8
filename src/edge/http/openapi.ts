/**
 * The edge API's route table for its OpenAPI document (`GET /openapi.json`) and reference page
 * (`GET /docs`): every route of ./app.ts with its request and response schemas and its error
 * statuses. The schemas are the ones the routes validate with, so the document follows them; a
 * route missing here fails tests/integration/openapi.test.ts.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { MemoryFilter } from "../../core/filter.ts";
import { LocalMemory, Memory, MemoryKind, MemoryPatch, NewMemory } from "../../core/memory.ts";
import {
  CLIENT_HEADER,
  EdgeHealth,
  Limit,
  RecallRequest,
  RecallResponse,
} from "../../core/protocol/edge-api.ts";
import {
  AskEvent,
  AskRequest,
  ConsolidateResponse,
  GraphQueryRequest,
  Job,
} from "../../core/protocol/heavy.ts";
import { type ApiSpec, type OperationSpec, openApiDocument } from "../../core/protocol/openapi.ts";
import { DOCS_PAGE_CSP, renderApiPage } from "../../core/protocol/openapi-page.ts";
import { ConflictEntry, QueueCounts } from "../../core/protocol/sync.ts";
import { VERSION } from "../../core/version.ts";
import { GraphAnswer } from "../heavy/service.ts";
import { JobWaitQuery, RecentQuery } from "./app.ts";

/** Either credential the token guard accepts (./guard.ts). */
const TOKEN = ["apiToken", "session"];
/** Every route passes the Host and Origin guards (403) and, with a token, the token guard (401). */
const GUARDED = [401, 403, 500];
/** Routes with a JSON body. */
const BODY = [400, 413, 415];

const Memories = z.object({ memories: z.array(LocalMemory) });
const Conflicts = z.object({ conflicts: z.array(ConflictEntry) });
const JobAnswer = z.object({ job: Job });
const SyncStatus = z
  .object({ queue: QueueCounts })
  .catchall(z.unknown())
  .describe("The queue counts, and the sync engine's state when there is one (docs/sync.md).");
const SyncRun = z
  .object({ report: z.record(z.string(), z.unknown()), queue: QueueCounts })
  .catchall(z.unknown())
  .describe("The cycle's report, then the same fields as `GET /v1/sync/status`.");
const SessionTicket = z.object({
  ticket: z.string().describe("Single use; for `GET /session?ticket=…`."),
  expires_at: z.iso.datetime().describe("60 s after it was issued."),
});
const MemoryId = z.object({ id: z.string().describe("The memory's id (a UUID).") });

/** `GET /v1/memories`: `recent`, and the filter as query parameters (`filterFromQuery`: `tag` and
 * `meta=key=value` repeat), with the filter's own rules. A function: ./app.ts, which defines
 * `RecentQuery`, imports this module. */
const listQuery = () =>
  RecentQuery.extend({
    scope: MemoryFilter.shape.scope.describe("`work` exactly, `project/*` that scope and below, `*` any."),
    tag: MemoryFilter.shape.tags.describe("Repeat for several: memories with every one of them."),
    kind: MemoryFilter.shape.kind,
    source: MemoryFilter.shape.source,
    since: MemoryFilter.shape.since.describe(
      "`created_at` at or after: ISO 8601, or relative (`30m`, `12h`, `7d`, `2w`).",
    ),
    until: MemoryFilter.shape.until.describe("`created_at` at or before (the same forms)."),
    meta: z
      .array(z.string().regex(/^[^=]+=/))
      .optional()
      .describe("`key=value`, repeat for several: equality on top-level metadata keys."),
  });

function operations(): OperationSpec[] {
  return [
    {
      method: "get",
      path: "/health",
      summary: "Health, version, queue and sign-in state",
      tag: "daemon",
      security: [],
      responses: { 200: { description: "The daemon is up", schema: EdgeHealth } },
      problems: [403],
    },
    {
      method: "get",
      path: "/session",
      summary: "Trade a ticket for the browser session cookie",
      description:
        "Sets `dionysus_session` (HttpOnly, SameSite=Strict), which the API accepts instead of the " +
        "bearer token, for a ticket from `POST /v1/session/ticket` (what `dionysus open` opens). A " +
        "ticket works once, within 60 s. Only over loopback. Without a valid ticket: 401 (the " +
        "sign-in page instead of problem+json when the request accepts text/html), no cookie.",
      tag: "daemon",
      security: [],
      query: z.object({
        ticket: z.string().max(200).describe("The ticket from `POST /v1/session/ticket`."),
        next: z.literal("/").optional().describe("`/`: on to the status page (303) once the cookie is set."),
      }),
      responses: {
        204: { description: "The cookie is set", headers: { "Set-Cookie": "dionysus_session=…" } },
        303: {
          description: "The cookie is set; on to `next`",
          headers: { "Set-Cookie": "dionysus_session=…" },
        },
      },
      problems: [401, 403],
    },
    {
      method: "post",
      path: "/session",
      summary: "The sign-in page's form: trade the API token for the browser session cookie",
      description:
        "Only over loopback, and only with the daemon's own `Origin` (CSRF). A wrong token answers " +
        "the sign-in page again (401, no cookie); after 10 wrong tokens in a minute the form " +
        "answers 429 (with `Retry-After`) until the minute has passed. Programs use the bearer " +
        "token directly.",
      tag: "daemon",
      security: [],
      body: {
        schema: z.object({ token: z.string().max(200).describe("The content of `<data dir>/api-token`.") }),
        mediaTypes: ["application/x-www-form-urlencoded"],
      },
      responses: {
        303: { description: "The cookie is set; on to `/`", headers: { "Set-Cookie": "dionysus_session=…" } },
        401: { description: "Wrong token: the sign-in page with the reason", mediaType: "text/html" },
        429: { description: "Too many wrong tokens: the sign-in page with the wait", mediaType: "text/html" },
      },
      problems: [400, 403, 413, 415],
    },
    {
      method: "post",
      path: "/v1/session/ticket",
      summary: "A single-use ticket for a browser session (`dionysus open`)",
      description:
        "Open `/session?ticket=…&next=/` in a browser on this machine within 60 s to sign it in. " +
        "The daemon keeps only the ticket's hash, in memory.",
      tag: "daemon",
      security: ["apiToken"],
      responses: { 201: { description: "The ticket", schema: SessionTicket } },
      problems: GUARDED,
    },
    {
      method: "get",
      path: "/openapi.json",
      summary: "This OpenAPI document",
      tag: "daemon",
      security: [],
      responses: { 200: { description: "OpenAPI 3.1", mediaType: "application/json" } },
      problems: [403],
    },
    {
      method: "get",
      path: "/docs",
      summary: "The API reference as a page (no scripts, no network)",
      tag: "daemon",
      security: [],
      responses: { 200: { description: "HTML", mediaType: "text/html" } },
      problems: [403],
    },
    {
      method: "post",
      path: "/v1/memories",
      summary: "Store a memory",
      tag: "memories",
      security: TOKEN,
      headers: z.object({
        [CLIENT_HEADER]: z
          .string()
          .optional()
          .describe(
            "Dionysus's own clients name themselves (`cli`, `mcp:<client>`); the memory's `source`, else `api`.",
          ),
      }),
      body: {
        schema: NewMemory,
        example: { content: "Coffee with Ana at the museum", tags: ["ana"] },
      },
      responses: {
        201: { description: "Stored", schema: LocalMemory, headers: { Location: "/v1/memories/<id>" } },
      },
      problems: [...BODY, ...GUARDED],
    },
    {
      method: "get",
      path: "/v1/memories",
      summary: "Newest memories first",
      tag: "memories",
      security: TOKEN,
      query: listQuery(),
      responses: { 200: { description: "The memories", schema: Memories } },
      problems: [400, ...GUARDED],
    },
    {
      method: "get",
      path: "/v1/memories/{id}",
      summary: "One memory (records the access)",
      tag: "memories",
      security: TOKEN,
      params: MemoryId,
      responses: { 200: { description: "The memory", schema: LocalMemory } },
      problems: [404, ...GUARDED],
    },
    {
      method: "patch",
      path: "/v1/memories/{id}",
      summary: "Change a memory (any of content, kind, tags, metadata)",
      tag: "memories",
      security: TOKEN,
      params: MemoryId,
      body: { schema: MemoryPatch, example: { tags: ["ana", "museum"] } },
      responses: { 200: { description: "The updated memory", schema: LocalMemory } },
      problems: [...BODY, 404, ...GUARDED],
    },
    {
      method: "delete",
      path: "/v1/memories/{id}",
      summary: "Delete a memory (a tombstone syncs the delete)",
      tag: "memories",
      security: TOKEN,
      params: MemoryId,
      responses: { 204: { description: "Deleted" } },
      problems: [404, ...GUARDED],
    },
    {
      method: "post",
      path: "/v1/recall",
      summary: "Recall memories for a query, locally or on the VPS",
      description:
        "`route: auto` picks the local index or the VPS (docs/heavy.md); `degraded` says a fallback was taken.",
      tag: "recall",
      security: TOKEN,
      body: { schema: RecallRequest, example: { query: "museum", limit: 5 } },
      responses: { 200: { description: "The hits, best first", schema: RecallResponse } },
      problems: [...BODY, ...GUARDED, 503],
    },
    {
      method: "post",
      path: "/v1/graph/query",
      summary: "Entities around one entity (answered by the VPS, cached)",
      tag: "vps queries",
      security: TOKEN,
      body: { schema: GraphQueryRequest, example: { entity: "Ana Lima", depth: 2 } },
      responses: { 200: { description: "The graph around the entity", schema: GraphAnswer } },
      problems: [...BODY, ...GUARDED, 429, 503],
    },
    {
      method: "post",
      path: "/v1/consolidate",
      summary: "Start a consolidation job on the VPS",
      tag: "vps queries",
      security: TOKEN,
      responses: {
        202: { description: "The job (started, or the one already running)", schema: ConsolidateResponse },
      },
      problems: [...GUARDED, 429, 503],
    },
    {
      method: "get",
      path: "/v1/jobs/{id}",
      summary: "A VPS job, optionally waiting for it to finish",
      tag: "vps queries",
      security: TOKEN,
      params: z.object({ id: z.string().describe("The job's id (a UUID).") }),
      query: JobWaitQuery,
      responses: { 200: { description: "The job", schema: JobAnswer } },
      problems: [400, 404, ...GUARDED, 429, 503],
    },
    {
      method: "post",
      path: "/v1/ask",
      summary: "Ask a question answered from memories by the VPS's model (streamed)",
      tag: "vps queries",
      security: TOKEN,
      body: { schema: AskRequest, example: { question: "Where did I leave the spare key?" } },
      responses: {
        200: {
          description: "One event per line: `sources`, `delta`s, then `done` (or `error`)",
          schema: AskEvent,
          mediaType: "application/x-ndjson",
        },
      },
      problems: [...BODY, ...GUARDED, 429, 503],
    },
    {
      method: "get",
      path: "/v1/sync/status",
      summary: "Sync queue and engine state",
      tag: "sync",
      security: TOKEN,
      responses: { 200: { description: "The status", schema: SyncStatus } },
      problems: GUARDED,
    },
    {
      method: "post",
      path: "/v1/sync/run",
      summary: "Run one sync cycle now",
      tag: "sync",
      security: TOKEN,
      responses: { 200: { description: "The cycle's report and the status after it", schema: SyncRun } },
      problems: [...GUARDED, 503],
    },
    {
      method: "get",
      path: "/v1/conflicts",
      summary: "The local conflict log, newest first",
      tag: "sync",
      security: TOKEN,
      query: z.object({ limit: Limit.default(20) }),
      responses: { 200: { description: "The versions that lost", schema: Conflicts } },
      problems: [400, ...GUARDED],
    },
    {
      method: "post",
      path: "/v1/sync/retry",
      summary: "Requeue failed sync items (all of them without `ids`)",
      tag: "sync",
      security: TOKEN,
      body: {
        schema: z.object({ ids: z.array(z.number().int().positive()).max(1000).optional() }),
        example: { ids: [3507] },
      },
      responses: { 200: { description: "What was requeued", schema: z.record(z.string(), z.unknown()) } },
      problems: [...BODY, ...GUARDED],
    },
    {
      method: "post",
      path: "/v1/sync/dismiss",
      summary: "Drop one failed sync item",
      tag: "sync",
      security: TOKEN,
      body: { schema: z.object({ id: z.number().int().positive() }), example: { id: 3507 } },
      responses: { 204: { description: "Dropped" } },
      problems: [...BODY, 404, ...GUARDED],
    },
    ...pageOperations(),
    ...mcpOperations(),
  ];
}

/** The status page (./pages/): HTML for a browser on this machine, through the session cookie. */
function pageOperations(): OperationSpec[] {
  return [
    {
      method: "get",
      path: "/",
      summary: "The status page (memories, search, sync queue, conflicts)",
      description:
        "A browser without credentials gets the sign-in page (401): run `dionysus open`, or paste " +
        "the API token (`POST /session`).",
      tag: "status page",
      security: TOKEN,
      query: z.object({
        q: z.string().max(500).optional().describe("Search text."),
        kind: MemoryKind.optional(),
        tag: z.string().max(100).optional(),
        retried: z.coerce.number().int().min(0).optional().describe("Shown after a retry."),
      }),
      responses: {
        200: { description: "The page", mediaType: "text/html" },
        401: { description: "No credentials: the sign-in page", mediaType: "text/html" },
      },
      problems: [400, ...GUARDED],
    },
    {
      method: "get",
      path: "/assets/status.css",
      summary: "The status page's (and the sign-in page's) style sheet",
      tag: "status page",
      security: [],
      responses: { 200: { description: "CSS", mediaType: "text/css" } },
      problems: [403],
    },
    {
      method: "post",
      path: "/sync/retry",
      summary: "Requeue failed sync items (the status page's form)",
      description: "With the session cookie, the request must carry the page's own Origin (CSRF).",
      tag: "status page",
      security: TOKEN,
      body: {
        schema: z.object({
          id: z
            .union([z.string(), z.array(z.string())])
            .optional()
            .describe("Failed item numbers."),
        }),
        mediaTypes: ["application/x-www-form-urlencoded"],
      },
      responses: { 303: { description: "Back to `/?retried=N`" } },
      problems: [400, ...GUARDED],
    },
  ];
}

/** `/mcp`: the MCP server over Streamable HTTP (docs/edge.md "MCP"). Its messages are JSON-RPC
 * 2.0, described by the MCP specification, not here; its tools' schemas are `tools/list`'s. */
function mcpOperations(): OperationSpec[] {
  const session = "`Mcp-Session-Id` (from the answer to `initialize`) names the session";
  const Message = z.record(z.string(), z.unknown());
  const JsonRpc = z
    .union([Message, z.array(Message)])
    .describe("A JSON-RPC 2.0 message, or a batch of them.");
  const common = { tag: "mcp", security: TOKEN, problems: GUARDED };
  return [
    {
      ...common,
      method: "post",
      path: "/mcp",
      summary: "Send MCP messages (JSON-RPC 2.0); `initialize` opens a session",
      description: `${session}; an unknown session is 404 (initialize again).`,
      body: {
        schema: JsonRpc,
        example: { jsonrpc: "2.0", id: 1, method: "tools/list" },
      },
      responses: {
        200: {
          description: "The JSON-RPC answer",
          schema: JsonRpc,
          headers: { "Mcp-Session-Id": "The session, on the answer to `initialize`" },
        },
        202: { description: "A notification or answer was accepted" },
        404: { description: "No such session", schema: JsonRpc },
      },
    },
    {
      ...common,
      method: "get",
      path: "/mcp",
      summary: "The session's stream of server messages",
      description: session,
      responses: { 200: { description: "Server-sent events", mediaType: "text/event-stream" } },
    },
    {
      ...common,
      method: "delete",
      path: "/mcp",
      summary: "End the session",
      description: session,
      responses: { 200: { description: "Ended" } },
    },
  ];
}

/** The edge API's description; built on first use (it walks every schema). */
export function edgeApiSpec(): ApiSpec {
  return {
    title: "Dionysus edge agent",
    version: VERSION,
    description:
      "The local API of `dionysus serve` (127.0.0.1:8080). It answers loopback Host names only and " +
      "refuses cross-origin browser requests (403). Errors are `application/problem+json`.",
    securitySchemes: {
      apiToken: {
        type: "http",
        scheme: "bearer",
        description: "The content of `<data dir>/api-token` (owner-only), which `dionysus serve` creates.",
      },
      session: {
        type: "apiKey",
        in: "cookie",
        name: "dionysus_session",
        description:
          "The browser session `GET /session` sets for a ticket (`dionysus open`), or `POST /session` for the API token, over loopback.",
      },
    },
    components: {
      Memory,
      LocalMemory,
      RecallResponse,
      EdgeHealth,
      GraphAnswer,
      ConsolidateResponse,
      Job,
      AskEvent,
      ConflictEntry,
      QueueCounts,
    },
    operations: operations(),
  };
}

let cached: { json: string; html: string } | undefined;

/** Serves `GET /openapi.json` and `GET /docs` (both need no token: they hold no user data). */
export function mountOpenApi(app: Hono): void {
  const built = () => {
    if (!cached) {
      const doc = openApiDocument(edgeApiSpec());
      cached = { json: JSON.stringify(doc), html: renderApiPage(doc) };
    }
    return cached;
  };
  app.get("/openapi.json", (c) => c.body(built().json, 200, { "Content-Type": "application/json" }));
  app.get("/docs", (c) => c.html(built().html, 200, { "Content-Security-Policy": DOCS_PAGE_CSP }));
}
