/**
 * The edge agent's local HTTP API (127.0.0.1:8080): memories, keyword recall, health and sync
 * status, as Hono routes over an {@link EdgeStore}. Every error is `application/problem+json`.
 * Every route but `GET /health`, the ways to a browser session (`GET`/`POST /session`, see
 * ./browser-session.ts) and the API's description (`GET /openapi.json`, `GET /docs`, see
 * ./openapi.ts) needs the API token (see ./guard.ts). `GET /` is the status page (./pages/).
 */
import { zValidator } from "@hono/zod-validator";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { stream } from "hono/streaming";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import type { EdgeConfig } from "../../core/config.ts";
import {
  DionysusError,
  describeIssues,
  isDionysusError,
  PROBLEM_CONTENT_TYPE,
  problemBody,
} from "../../core/errors.ts";
import { filterFromQuery, parseFilter, withDefaultScope, writeScope } from "../../core/filter.ts";
import { DEFAULT_MAX_CONTENT_BYTES, MemoryPatch, NewMemory } from "../../core/memory.ts";
import {
  type AuthState,
  CLIENT_HEADER,
  type EdgeHealth,
  Limit,
  RecallRequest,
  requestSource,
} from "../../core/protocol/edge-api.ts";
import { AskRequest, GraphQueryRequest } from "../../core/protocol/heavy.ts";
import { classifyOperation, type Operation } from "../../core/router.ts";
import { CONTENT_JSON_FACTOR, MAX_METADATA_BYTES } from "../../core/validate.ts";
import { VERSION } from "../../core/version.ts";
import { recallOnDevice, withoutVector } from "../heavy/recall.ts";
import type { VpsQueryClient } from "../heavy/service.ts";
import { createMcpHttpHandler } from "../mcp/http.ts";
import { localBackend } from "../mcp/local-backend.ts";
import { createMcpServer } from "../mcp/server.ts";
import type { EdgeStore } from "../store/types.ts";
import { createBrowserSessions } from "./browser-session.ts";
import { hostGuard, originGuard, tokenGuard } from "./guard.ts";
import { mountOpenApi } from "./openapi.ts";
import { statusPageRoutes } from "./pages/routes.tsx";
import { signInPage, signInRoutes } from "./pages/sign-in.tsx";

export interface EdgeAppDeps {
  store: EdgeStore;
  /**
   * The bearer token every route but `GET /health` and the ways to a browser session requires
   * (`<data_dir>/api-token`). `null` leaves the API open: only for an app that is never served
   * on a socket (in-process tests); the daemon always passes the token.
   */
  apiToken: string | null;
  config?: Partial<Pick<EdgeConfig, "host" | "max_content_bytes" | "allowed_origins" | "scope">>;
  /** The sync engine; absent: an agent without sync (offline, `POST /v1/sync/run` is a 503). */
  sync?: SyncControl;
  /** Writes wait for this (the daemon's background integrity check); a rejection refuses them. */
  ready?: Promise<void>;
  /** Queries the VPS answers ("heavy", see docs/architecture.md) and the cache of their answers;
   * absent: local-only (not logged in). */
  heavy?: VpsQueryClient;
  /** Where unexpected errors are logged (default: stderr). */
  log?: (message: string, err?: unknown) => void;
  /** `<data_dir>/api-token`, as the sign-in page names it. */
  apiTokenPath?: string;
  /** The clock of the browser session tickets and the sign-in budget (tests; default Date.now). */
  now?: () => number;
}

/** What the local API asks of the sync engine. */
export interface SyncControl {
  /** Called after each successful local write (the engine pushes soon after). */
  onLocalWrite(): void;
  /** Extra fields merged into `GET /v1/sync/status`. */
  status(): object;
  /** Whether the VPS is reachable, for `/health`. */
  online(): boolean;
  /** Login state, for `/health`. */
  auth(): AuthState;
  /** Runs one sync cycle now, for `POST /v1/sync/run` (`dionysus sync` while a daemon runs). */
  syncNow(): Promise<object>;
}

/** `GET /v1/memories?recent=N`: newest first; 20 unless said otherwise. The filter's parameters
 * (`scope`, `tag`, `kind`, `source`, `since`, `until`, `meta`) are read by `filterFromQuery`. */
export const RecentQuery = z.object({ recent: Limit.default(20) });

/** `GET /v1/jobs/:id?wait=S`: wait up to S seconds (0..60) for the job to finish. */
export const JobWaitQuery = z.object({
  wait: z.coerce.number().min(0, "wait must be 0..60").max(60, "wait must be 0..60").default(0),
});

/** What the Bun server passes as `c.env`, when there is one. */
interface ServerLike {
  timeout?(req: Request, seconds: number): void;
  requestIP?(req: Request): { address: string } | null;
}

/** The problem+json answer for `err`; its `instance` is the request path. */
function problem(c: Context, err: DionysusError): Response {
  return c.body(problemBody(err, c.req.path), err.status as ContentfulStatusCode, {
    "Content-Type": PROBLEM_CONTENT_TYPE,
  });
}

/** The zod-validator hook: a failed validation is a 400 with a readable detail. */
function onInvalid(result: {
  success: boolean;
  error?: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> };
}) {
  if (!result.success && result.error)
    throw new DionysusError("invalid_input", describeIssues(result.error.issues));
}

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Bodies must be JSON, and valid UTF-8 (a lossy decode would store replacement characters). */
const jsonBody: MiddlewareHandler = async (c, next) => {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/([\w.-]+\+)?json\s*(;|$)/i.test(type))
    throw new DionysusError(
      "unsupported_media_type",
      "the request body must be JSON (Content-Type: application/json)",
    );
  const bytes = await c.req.arrayBuffer();
  try {
    fatalUtf8.decode(bytes);
  } catch {
    throw new DionysusError("invalid_input", "the request body is not valid UTF-8");
  }
  await next();
};

export function createEdgeApp(deps: EdgeAppDeps): Hono {
  const { store } = deps;
  const maxContent = deps.config?.max_content_bytes ?? DEFAULT_MAX_CONTENT_BYTES;
  // Writes without a scope get it; reads without a scope filter are narrowed to it and below.
  const defaultScope = deps.config?.scope ?? null;
  const log = deps.log ?? ((message, err) => console.error(`dionysus: ${message}`, err ?? ""));
  const wrote = () => {
    try {
      deps.sync?.onLocalWrite();
    } catch (err) {
      log("onLocalWrite hook failed", err);
    }
  };
  // A body much larger than the content limit is refused before it is read or parsed: content
  // JSON-encoded may be twice its byte limit, plus room for metadata and tags.
  const maxBody = CONTENT_JSON_FACTOR * maxContent + MAX_METADATA_BYTES + 64 * 1024;
  const limitBody = bodyLimit({
    maxSize: maxBody,
    onError: () => {
      throw new DionysusError(
        "payload_too_large",
        `the request body is larger than allowed (${maxBody} bytes)`,
      );
    },
  });

  const app = new Hono();

  app.onError((err, c) => {
    if (isDionysusError(err)) {
      if (err.code === "unauthorized") c.header("WWW-Authenticate", 'Bearer realm="dionysus-edge"');
      return problem(c, err);
    }
    if (err instanceof HTTPException) {
      const code =
        err.status === 413 ? "payload_too_large" : err.status === 400 ? "invalid_input" : undefined;
      if (code) return problem(c, new DionysusError(code, err.message || "bad request"));
      return problem(c, new DionysusError("internal", err.message, { status: err.status }));
    }
    log(`unexpected error on ${c.req.method} ${c.req.path}`, err);
    return problem(c, new DionysusError("internal", "unexpected error; see the daemon's log"));
  });
  app.notFound((c) => problem(c, new DionysusError("not_found", `no route ${c.req.method} ${c.req.path}`)));

  app.use("*", hostGuard(deps.config?.host ?? "127.0.0.1"));
  app.use("*", originGuard(deps.config?.allowed_origins ?? []));
  // The browser session (./browser-session.ts): a cookie for whoever shows a ticket from
  // `POST /v1/session/ticket` or pastes the token into the sign-in page; never for a mere caller.
  const sessions = createBrowserSessions(deps.now);
  const tokenPath = deps.apiTokenPath ?? "<data dir>/api-token";
  app.use(
    "*",
    tokenGuard(deps.apiToken, {
      isSession: sessions.isSession,
      signIn: (c) => signInPage(c, tokenPath, 401),
    }),
  );

  app.route("/", signInRoutes({ sessions, apiToken: deps.apiToken, tokenPath }));

  // A single-use ticket for `GET /session` (what `dionysus open` asks for, with the token).
  app.post("/v1/session/ticket", (c) => {
    c.header("Cache-Control", "no-store");
    return c.json(sessions.issueTicket(), 201);
  });

  app.route("/", statusPageRoutes({ store, defaultScope, ...(deps.sync ? { sync: deps.sync } : {}) }));

  app.get("/health", (c) => {
    const body: EdgeHealth = {
      status: "ok",
      version: VERSION,
      device_id: store.deviceId,
      online: deps.sync?.online() ?? false,
      queue: store.queueCounts(),
      auth: deps.sync?.auth() ?? "none",
    };
    return c.json(body);
  });

  mountOpenApi(app);

  app.post("/v1/memories", limitBody, jsonBody, zValidator("json", NewMemory, onInvalid), async (c) => {
    await deps.ready;
    const body = c.req.valid("json");
    const memory = store.create(
      { ...body, scope: writeScope(body.scope, defaultScope) },
      { source: requestSource(c.req.header(CLIENT_HEADER)) },
    );
    wrote();
    c.header("Location", `/v1/memories/${memory.id}`);
    return c.json(memory, 201);
  });

  app.get("/v1/memories", zValidator("query", RecentQuery, onInvalid), (c) => {
    const filter = withDefaultScope(
      parseFilter(filterFromQuery(new URL(c.req.url).searchParams), null),
      defaultScope,
    );
    return c.json({ memories: store.recent(c.req.valid("query").recent, filter).map(withoutVector) });
  });

  app.get("/v1/memories/:id", (c) => {
    const id = c.req.param("id");
    const memory = store.get(id);
    if (!memory) throw new DionysusError("not_found", `no memory with id ${id}`);
    return c.json(memory);
  });

  app.patch(
    "/v1/memories/:id",
    limitBody,
    jsonBody,
    zValidator("json", MemoryPatch, onInvalid),
    async (c) => {
      await deps.ready;
      const memory = store.update(c.req.param("id"), c.req.valid("json"));
      wrote();
      return c.json(memory);
    },
  );

  app.delete("/v1/memories/:id", async (c) => {
    await deps.ready;
    store.delete(c.req.param("id"));
    wrote();
    return c.body(null, 204);
  });

  // Routes that may wait on the VPS (10 s before a fallback) must outlive Bun's idle timeout (10 s).
  const mayWaitOnVps: MiddlewareHandler = async (c, next) => {
    (c.env as ServerLike | undefined)?.timeout?.(c.req.raw, 60);
    await next();
  };
  for (const path of ["/v1/recall", "/v1/graph/query", "/v1/consolidate", "/v1/jobs/*"])
    app.use(path, mayWaitOnVps);

  app.post("/v1/recall", limitBody, jsonBody, zValidator("json", RecallRequest, onInvalid), async (c) => {
    return c.json(await recallOnDevice(store, c.req.valid("json"), defaultScope, deps.heavy));
  });

  // ---- VPS queries ("heavy", see docs/architecture.md): always on the VPS (503 when it cannot be used) ----
  const heavy = (op: Operation): VpsQueryClient => {
    if (deps.heavy) return deps.heavy;
    const plan = classifyOperation(op, { online: false, authenticated: false, linked: false });
    throw new DionysusError("unavailable", plan.where === "unavailable" ? plan.message : "no VPS");
  };

  app.post(
    "/v1/graph/query",
    limitBody,
    jsonBody,
    zValidator("json", GraphQueryRequest, onInvalid),
    async (c) => {
      const req = c.req.valid("json");
      const filter = withDefaultScope(req.filter, defaultScope);
      return c.json(await heavy("graph").graph(filter ? { ...req, filter } : req));
    },
  );

  app.post("/v1/consolidate", async (c) => c.json(await heavy("consolidate").consolidate(), 202));

  app.get("/v1/jobs/:id", zValidator("query", JobWaitQuery, onInvalid), async (c) => {
    const wait = c.req.valid("query").wait;
    if (wait > 0) (c.env as ServerLike | undefined)?.timeout?.(c.req.raw, wait + 30);
    return c.json({ job: await heavy("consolidate").job(c.req.param("id"), wait) });
  });

  app.post("/v1/ask", limitBody, jsonBody, zValidator("json", AskRequest, onInvalid), async (c) => {
    const abort = new AbortController();
    const events = await heavy("ask").ask(c.req.valid("json"), abort.signal);
    // The model may pause longer than the server's idle timeout between two words.
    (c.env as ServerLike | undefined)?.timeout?.(c.req.raw, 0);
    c.header("Content-Type", "application/x-ndjson; charset=utf-8");
    c.header("Cache-Control", "no-store");
    return stream(c, async (out) => {
      out.onAbort(() => abort.abort());
      for await (const ev of events) {
        if (out.aborted) break;
        await out.write(`${JSON.stringify(ev)}\n`);
      }
    });
  });

  app.get("/v1/sync/status", (c) => c.json({ queue: store.queueCounts(), ...(deps.sync?.status() ?? {}) }));

  app.post("/v1/sync/run", async (c) => {
    const sync = deps.sync;
    if (!sync) throw new DionysusError("unavailable", "sync is not available in this agent");
    // A cycle can outlast Bun.serve's idle timeout (10 s: a large backlog or first pull), which
    // would reset the connection while the answer is still coming.
    (c.env as { timeout?(req: Request, seconds: number): void } | undefined)?.timeout?.(c.req.raw, 0);
    const report = await sync.syncNow();
    return c.json({ report, queue: store.queueCounts(), ...sync.status() });
  });

  // Failed items (writes the VPS refused): queued again under new numbers, or dismissed.
  // `ids` left out retries every failed item; an empty list is refused rather than read as "all".
  const MutationIds = z.object({
    ids: z
      .array(z.number().int().positive())
      .min(1, "ids: name at least one item, or leave ids out to retry every failed item")
      .max(1000)
      .optional(),
  });
  app.post("/v1/sync/retry", limitBody, jsonBody, zValidator("json", MutationIds, onInvalid), (c) => {
    const result = store.retryFailed(c.req.valid("json").ids);
    if (result.retried.length > 0) deps.sync?.onLocalWrite();
    return c.json(result);
  });
  app.post(
    "/v1/sync/dismiss",
    limitBody,
    jsonBody,
    zValidator("json", z.object({ id: z.number().int().positive() }), onInvalid),
    (c) => {
      store.dismissFailed(c.req.valid("json").id);
      return c.body(null, 204);
    },
  );

  app.get("/v1/conflicts", zValidator("query", z.object({ limit: Limit.default(20) }), onInvalid), (c) => {
    const limit = c.req.valid("query").limit;
    return c.json({ conflicts: store.conflicts(limit) });
  });

  // ---- MCP over Streamable HTTP (docs/edge.md "MCP"), behind the same guards as /v1/* ----
  const edge = {
    store,
    ready: deps.ready,
    wrote,
    heavy,
    vps: deps.heavy,
    sync: deps.sync,
    scope: defaultScope,
  };
  const mcp = createMcpHttpHandler({
    newServer: () => createMcpServer({ connect: async (source) => localBackend({ ...edge, source }) }),
    maxBodyBytes: maxBody,
  });
  app.all("/mcp", (c) => {
    // The server's event stream (GET) stays open; a tool call is bounded by the MCP server itself.
    (c.env as ServerLike | undefined)?.timeout?.(c.req.raw, 0);
    return mcp(c.req.raw);
  });

  return app;
}
