/**
 * The VPS HTTP API (Hono). The user and device of every `/v1` call come from the access token, never
 * from the request; every query below is scoped by them. Errors are problem+json (RFC 9457), except
 * the token endpoints, which answer in the OAuth shape `{error, error_description}` (RFC 6749 §5.2).
 */
import { timingSafeEqual } from "node:crypto";
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { routePath } from "hono/route";
import { stream, streamSSE } from "hono/streaming";
import type { z } from "zod";
import { DionysusError, describeIssues, isDionysusError, toProblem } from "../../core/errors.ts";
import {
  API_KEY_GRANT,
  DEVICE_CODE_GRANT,
  DEVICE_SPLIT_GRANT,
  DeviceAuthorizationRequest,
  type DeviceInfo,
  TokenRequest,
  WebhookRequest,
} from "../../core/protocol/auth.ts";
import { AskRequest, GraphQueryRequest, SearchRequest } from "../../core/protocol/heavy.ts";
import { PullQuery, PushRequest } from "../../core/protocol/sync.ts";
import { isUuid } from "../../core/uuid.ts";
import { VERSION } from "../../core/version.ts";
import { OAuthFailure } from "../auth/errors.ts";
import type { Principal } from "../auth/service.ts";
import type { HubStream } from "../push/hub.ts";
import type { VpsServices } from "../services.ts";
import { DEVICE_PAGE_CSP, type DevicePageState, renderDevicePage } from "./device-page.ts";
import { type RateDecision, RateLimiter } from "./rate-limit.ts";

/** What Bun passes as the second `fetch` argument (the server), when there is one. */
interface BunServerLike {
  timeout?(req: Request, seconds: number): void;
  requestIP?(req: Request): { address: string } | null;
}

type AppEnv = {
  Bindings: BunServerLike | undefined;
  Variables: { principal: Principal; requestId: string };
};

export interface VpsAppDeps {
  services: VpsServices;
  /** Token for the loopback-only `/admin/*` API; without one that API does not exist. */
  adminToken?: string;
  /** The client address (defaults to the socket's peer address as Bun reports it). */
  clientIp?: (c: Context<AppEnv>) => string | undefined;
  /** Seconds between SSE heartbeat comments (15). */
  heartbeatS?: number;
  /** Failed sign-ins on `/device` allowed per address and per user name per 15 min (5). */
  signInFailuresPer15Min?: number;
}

const REQUEST_ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

class RateLimited extends DionysusError {
  constructor(readonly decision: RateDecision) {
    super(
      "rate_limited",
      `rate limit of ${decision.limit} requests per minute exceeded; retry in ${decision.resetS} s`,
      {
        details: { retry_after_s: decision.resetS },
      },
    );
  }
}

class Unauthorized extends DionysusError {
  constructor(
    message: string,
    readonly challenge: string,
  ) {
    super("unauthorized", message);
  }
}

function rateHeaders(d: RateDecision): Record<string, string> {
  return {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(d.remaining),
    "RateLimit-Reset": String(d.resetS),
  };
}

async function readJson(c: Context<AppEnv>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new DionysusError("invalid_input", "the body is not valid JSON");
  }
}

/** Reads and validates a JSON body: 400 `invalid_input` with what is wrong. */
async function readBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.infer<S>> {
  const parsed = schema.safeParse(await readJson(c));
  if (!parsed.success) throw new DionysusError("invalid_input", describeIssues(parsed.error.issues));
  return parsed.data;
}

/** Token endpoints accept `application/x-www-form-urlencoded` (RFC 6749) and JSON. */
async function readFormOrJson(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  const type = c.req.header("content-type") ?? "";
  try {
    if (type.includes("application/json")) {
      const v = await c.req.json();
      if (v && typeof v === "object" && !Array.isArray(v)) return v as Record<string, unknown>;
      throw new Error("not an object");
    }
    if (type.includes("application/x-www-form-urlencoded") || type.includes("multipart/form-data")) {
      const form = await c.req.parseBody();
      return Object.fromEntries(Object.entries(form).filter(([, v]) => typeof v === "string"));
    }
  } catch {
    throw new OAuthFailure("invalid_request", "the body is not valid JSON or form data");
  }
  throw new OAuthFailure("invalid_request", "send application/x-www-form-urlencoded or application/json");
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Builds the Hono app of one VPS instance. */
export function createVpsApp(deps: VpsAppDeps): Hono<AppEnv> {
  const s = deps.services;
  const { config, auth, sync, hub, webhooks, metrics, log } = s;
  const limiter = new RateLimiter(config.rate_limit_per_min);
  const signInFailures = new RateLimiter(deps.signInFailuresPer15Min ?? 5, 15 * 60_000);
  const heartbeatMs = (deps.heartbeatS ?? 15) * 1000;
  const clientIp =
    deps.clientIp ?? ((c: Context<AppEnv>) => c.env?.requestIP?.(c.req.raw)?.address ?? undefined);
  const lastTouched = new Map<string, number>();

  const app = new Hono<AppEnv>();

  // Request id, one JSON log line and metrics per request. Never headers, query strings or bodies.
  app.use("*", async (c, next) => {
    const incoming = c.req.header("x-request-id");
    const requestId = incoming && REQUEST_ID_RE.test(incoming) ? incoming : crypto.randomUUID();
    c.set("requestId", requestId);
    const started = performance.now();
    await next();
    c.res.headers.set("x-request-id", requestId);
    const route = routePath(c, -1) || "unmatched";
    const seconds = (performance.now() - started) / 1000;
    metrics.observe(c.req.method, route, c.res.status, seconds);
    const p = c.get("principal") as Principal | undefined;
    log({
      msg: "request",
      request_id: requestId,
      method: c.req.method,
      route,
      path: new URL(c.req.url).pathname,
      status: c.res.status,
      duration_ms: Math.round(seconds * 100_000) / 100,
      ...(p ? { user_id: p.user_id, device_id: p.device_id } : {}),
      ip: clientIp(c) ?? null,
    });
  });

  function limit(c: Context<AppEnv>, key: string): void {
    const d = limiter.hit(key);
    for (const [k, v] of Object.entries(rateHeaders(d))) c.header(k, v);
    if (!d.allowed) throw new RateLimited(d);
  }

  const byIp: MiddlewareHandler<AppEnv> = async (c, next) => {
    limit(c, `ip:${clientIp(c) ?? "unknown"}`);
    await next();
  };

  const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    const principal = m ? await auth.authenticate(m[1]!) : undefined;
    if (!principal) {
      limit(c, `ip:${clientIp(c) ?? "unknown"}`);
      throw new Unauthorized(
        m ? "the access token is wrong, expired or revoked" : "missing bearer access token",
        m ? 'Bearer realm="dionysus", error="invalid_token"' : 'Bearer realm="dionysus"',
      );
    }
    c.set("principal", principal);
    limit(c, `device:${principal.user_id}:${principal.device_id}`);
    const key = `${principal.user_id}\u0000${principal.device_id}`;
    const t = Date.now();
    if (t - (lastTouched.get(key) ?? 0) > 60_000) {
      lastTouched.set(key, t);
      if (lastTouched.size > 100_000) lastTouched.clear();
      await auth.touchDevice(principal.user_id, principal.device_id);
    }
    await next();
  };

  app.onError((err, c) => {
    const requestId = c.get("requestId");
    if (err instanceof OAuthFailure)
      return c.json(err.toJSON(), err.status as 400, { "Cache-Control": "no-store", Pragma: "no-cache" });
    if (isDionysusError(err)) {
      const headers: Record<string, string> = { "Content-Type": "application/problem+json" };
      if (err instanceof RateLimited) {
        Object.assign(headers, rateHeaders(err.decision), { "Retry-After": String(err.decision.resetS) });
      }
      if (err instanceof Unauthorized) headers["WWW-Authenticate"] = err.challenge;
      return c.body(JSON.stringify(toProblem(err, requestId)), err.status as 400, headers);
    }
    log({
      level: "error",
      msg: "unhandled error",
      request_id: requestId,
      error: err instanceof Error ? err.message : String(err),
    });
    const internal = new DionysusError("internal", `internal error (request id ${requestId})`);
    return c.body(JSON.stringify(toProblem(internal, requestId)), 500, {
      "Content-Type": "application/problem+json",
    });
  });

  app.notFound((c) =>
    c.body(
      JSON.stringify(
        toProblem(new DionysusError("not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`)),
      ),
      404,
      { "Content-Type": "application/problem+json" },
    ),
  );

  // ---- health and metrics -------------------------------------------------------------------
  app.get("/health", async (c) => {
    const ok = await s.database.ping();
    return c.json(
      { status: ok ? "ok" : "unavailable", version: VERSION, database: ok ? "ok" : "unreachable" },
      ok ? 200 : 503,
    );
  });
  app.get("/metrics", (c) => c.body(metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4" }));

  // ---- auth -----------------------------------------------------------------------------------
  app.post("/v1/auth/device", byIp, async (c) => {
    const parsed = DeviceAuthorizationRequest.safeParse(await readFormOrJson(c));
    if (!parsed.success) throw new OAuthFailure("invalid_request", describeIssues(parsed.error.issues));
    const base = config.public_url?.replace(/\/+$/, "") ?? new URL(c.req.url).origin;
    const res = await auth.startDeviceAuthorization(parsed.data, `${base}/device`);
    return c.json(res, 200, { "Cache-Control": "no-store" });
  });

  app.post("/v1/auth/token", byIp, async (c) => {
    const body = await readFormOrJson(c);
    const grant = body.grant_type;
    if (typeof grant !== "string" || grant === "")
      throw new OAuthFailure("invalid_request", "grant_type is required");
    if (![DEVICE_CODE_GRANT, API_KEY_GRANT, DEVICE_SPLIT_GRANT, "refresh_token"].includes(grant))
      throw new OAuthFailure("unsupported_grant_type", `grant_type ${grant} is not supported`);
    const parsed = TokenRequest.safeParse(body);
    if (!parsed.success) throw new OAuthFailure("invalid_request", describeIssues(parsed.error.issues));
    const r = parsed.data;
    const tokens =
      r.grant_type === DEVICE_CODE_GRANT
        ? await auth.pollDeviceCode(r.device_code)
        : r.grant_type === "refresh_token"
          ? await auth.refresh(r.refresh_token)
          : r.grant_type === DEVICE_SPLIT_GRANT
            ? await auth.splitDevice(r.refresh_token, deviceInfoOf(r))
            : await auth.tokenForApiKey(r.api_key, deviceInfoOf(r));
    return c.json(tokens, 200, { "Cache-Control": "no-store", Pragma: "no-cache" });
  });

  const page = (c: Context<AppEnv>, state: DevicePageState, status = 200) =>
    c.html(renderDevicePage(state), status as 200, {
      "Content-Security-Policy": DEVICE_PAGE_CSP,
      "X-Frame-Options": "DENY",
      "Cache-Control": "no-store",
      "Referrer-Policy": "no-referrer",
    });

  app.get("/device", byIp, async (c) => {
    const code = c.req.query("code")?.slice(0, 20);
    const pending = code ? await auth.pendingUserCode(code) : undefined;
    return page(c, {
      ...(code ? { code } : {}),
      ...(pending ? { device: pending } : {}),
      ...(code && !pending
        ? { message: { text: "This code is unknown, already used, or expired.", ok: false } }
        : {}),
    });
  });

  app.post("/device", byIp, async (c) => {
    const origin = c.req.header("origin");
    if (origin && origin !== new URL(c.req.url).origin && origin !== config.public_url?.replace(/\/+$/, ""))
      return page(c, { message: { text: "This form must be sent from this site.", ok: false } }, 403);
    let form: Record<string, unknown>;
    try {
      form = await c.req.parseBody();
    } catch {
      return page(c, { message: { text: "Send the form from this page.", ok: false } }, 400);
    }
    const str = (k: string) => (typeof form[k] === "string" ? (form[k] as string) : "");
    const code = str("user_code").slice(0, 20);
    const username = str("username").slice(0, 64);
    const password = str("password").slice(0, 1024);
    const act = str("action");
    if (!code || (act !== "approve" && act !== "deny"))
      return page(
        c,
        { code, username, message: { text: "Enter the code and choose Approve or Deny.", ok: false } },
        400,
      );
    const pending = await auth.pendingUserCode(code);
    if (!pending)
      return page(
        c,
        { code, username, message: { text: "This code is unknown, already used, or expired.", ok: false } },
        400,
      );
    if (act === "deny") {
      await auth.decideUserCode(code, "deny");
      return page(c, { done: true, message: { text: "Denied. The device was not connected.", ok: true } });
    }
    const ipKey = `ip:${clientIp(c) ?? "unknown"}`;
    const userKey = `user:${username}`;
    if (signInFailures.blocked(ipKey) || signInFailures.blocked(userKey))
      return page(
        c,
        {
          code,
          username,
          message: { text: "Too many failed sign-ins. Wait 15 minutes and try again.", ok: false },
        },
        429,
      );
    const user = username && password ? await auth.verifyPassword(username, password) : undefined;
    if (!user) {
      signInFailures.hit(ipKey);
      signInFailures.hit(userKey);
      return page(
        c,
        { code, username, device: pending, message: { text: "Wrong user name or password.", ok: false } },
        401,
      );
    }
    try {
      await auth.decideUserCode(code, "approve", user.id);
    } catch (err) {
      if (isDionysusError(err) && err.code === "not_found")
        return page(
          c,
          { message: { text: "This code is unknown, already used, or expired.", ok: false } },
          400,
        );
      throw err;
    }
    return page(c, {
      done: true,
      message: {
        text: `Approved. ${pending.device_name ?? pending.device_id} is now connected; return to it.`,
        ok: true,
      },
    });
  });

  // ---- the caller's own account -------------------------------------------------------------
  app.get("/v1/identity", requireAuth, async (c) => c.json(await sync.identity(c.get("principal"))));

  app.get("/v1/devices", requireAuth, async (c) =>
    c.json({ devices: await auth.listDevices(c.get("principal").user_id) }),
  );

  app.delete("/v1/devices/:id", requireAuth, async (c) =>
    c.json(await auth.revokeDevice(c.get("principal").user_id, c.req.param("id"))),
  );

  // ---- sync -----------------------------------------------------------------------------------
  app.post(
    "/v1/sync/push",
    requireAuth,
    bodyLimit({
      maxSize: config.max_push_bytes,
      onError: () => {
        throw new DionysusError("payload_too_large", `the push body is over ${config.max_push_bytes} bytes`, {
          details: { limit_bytes: config.max_push_bytes },
        });
      },
    }),
    async (c) => {
      const body = await readJson(c);
      const mutations = (body as { mutations?: unknown } | null)?.mutations;
      if (Array.isArray(mutations) && mutations.length > config.max_push_mutations)
        throw new DionysusError(
          "payload_too_large",
          `${mutations.length} mutations in one push; the limit is ${config.max_push_mutations}`,
          { details: { limit_mutations: config.max_push_mutations } },
        );
      const parsed = PushRequest.safeParse(body);
      if (!parsed.success) throw new DionysusError("invalid_input", describeIssues(parsed.error.issues));
      const p = c.get("principal");
      const out = await sync.push(p, parsed.data.mutations);
      if (out.seq !== undefined) webhooks.dispatch(p.user_id, out.seq);
      return c.json(out.response);
    },
  );

  app.get("/v1/sync/pull", requireAuth, async (c) => {
    const parsed = PullQuery.safeParse(c.req.query());
    if (!parsed.success) throw new DionysusError("invalid_input", describeIssues(parsed.error.issues));
    return c.json(await sync.pull(c.get("principal").user_id, parsed.data));
  });

  app.get("/v1/conflicts", requireAuth, async (c) => {
    const lim = Number(c.req.query("limit") ?? 100);
    if (!Number.isInteger(lim) || lim < 1 || lim > 1000)
      throw new DionysusError("invalid_input", "limit must be 1..1000");
    const memoryId = c.req.query("memory_id");
    return c.json({
      conflicts: await sync.conflicts(c.get("principal").user_id, {
        limit: lim,
        ...(memoryId ? { memory_id: memoryId } : {}),
      }),
    });
  });

  // ---- realtime -------------------------------------------------------------------------------
  app.get("/v1/events", requireAuth, async (c) => {
    const p = c.get("principal");
    const lastId = c.req.header("last-event-id") ?? c.req.query("last_event_id");
    if (lastId !== undefined && !/^\d{1,15}$/.test(lastId))
      throw new DionysusError("invalid_input", "Last-Event-ID must be a sequence number");
    const current = lastId !== undefined ? (await sync.currentCursor(p.user_id)).seq : 0;
    // A device of this user is online: decode the user's vectors before their first search.
    s.heavy.vectors.warm(p.user_id);
    // A quiet stream is not idle: Bun would close it after idleTimeout otherwise.
    c.env?.timeout?.(c.req.raw, 0);
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, async (stream) => {
      let closed = false;
      let wake: () => void = () => {};
      const stream_: HubStream = {
        user_id: p.user_id,
        device_id: p.device_id,
        send(ev) {
          stream
            .writeSSE({ event: "changes", id: String(ev.seq), data: JSON.stringify(ev) })
            .catch(() => stream_.close());
        },
        sendJob(job) {
          stream.writeSSE({ event: "job", data: JSON.stringify(job) }).catch(() => stream_.close());
        },
        close() {
          closed = true;
          wake();
        },
      };
      stream.onAbort(() => stream_.close());
      const remove = hub.add(stream_);
      try {
        await stream.write(": connected\n\n");
        if (lastId !== undefined && current > Number(lastId)) hub.pokeNow(stream_, current);
        while (!closed && !stream.aborted) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, heartbeatMs);
          });
          clearTimeout(timer);
          if (closed || stream.aborted) break;
          await stream.write(": heartbeat\n\n");
        }
      } finally {
        remove();
      }
    });
  });

  // ---- heavy queries (issue 5) ---------------------------------------------------------------
  const heavy = s.heavy;

  app.post("/v1/search", requireAuth, async (c) => {
    const req = await readBody(c, SearchRequest);
    return c.json(await heavy.search.search(c.get("principal").user_id, req));
  });

  app.post("/v1/graph/query", requireAuth, async (c) => {
    const req = await readBody(c, GraphQueryRequest);
    return c.json(await heavy.graph.query(c.get("principal").user_id, req));
  });

  app.post("/v1/consolidate", requireAuth, async (c) => {
    const answer = await heavy.queue.startConsolidation(c.get("principal").user_id);
    if (answer.started) heavy.worker.wake();
    return c.json(answer, 202);
  });

  app.get("/v1/jobs/:id", requireAuth, async (c) => {
    const id = c.req.param("id");
    const job = isUuid(id) ? await heavy.queue.get(c.get("principal").user_id, id) : undefined;
    if (!job) throw new DionysusError("not_found", `no job ${id}`);
    return c.json({ job });
  });

  app.post("/v1/ask", requireAuth, async (c) => {
    const req = await readBody(c, AskRequest);
    const events = await heavy.ask.prepare(c.get("principal").user_id, req);
    // A model may think for a while before its first word: the stream is not idle.
    c.env?.timeout?.(c.req.raw, 0);
    c.header("Content-Type", "application/x-ndjson; charset=utf-8");
    c.header("Cache-Control", "no-store");
    c.header("X-Accel-Buffering", "no");
    return stream(c, async (out) => {
      out.onAbort(() => {
        void events.return(undefined);
      });
      for await (const ev of events) {
        if (out.aborted) break;
        await out.write(`${JSON.stringify(ev)}\n`);
      }
    });
  });

  app.post("/v1/webhooks", requireAuth, async (c) => {
    const parsed = WebhookRequest.safeParse(await readJson(c));
    if (!parsed.success) throw new DionysusError("invalid_input", describeIssues(parsed.error.issues));
    return c.json(await webhooks.register(c.get("principal"), parsed.data), 201);
  });
  app.get("/v1/webhooks", requireAuth, async (c) =>
    c.json({ webhooks: await webhooks.list(c.get("principal")) }),
  );
  app.delete("/v1/webhooks/:id", requireAuth, async (c) => {
    await webhooks.remove(c.get("principal"), c.req.param("id"));
    return c.body(null, 204);
  });

  // ---- loopback-only administration (used by `dionysus vps ...` while a server holds PGlite) ---
  const adminToken = deps.adminToken;
  if (adminToken) {
    app.use("/admin/*", async (c, next) => {
      const ip = clientIp(c);
      const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
      if (!ip || !LOOPBACK.has(ip))
        throw new DionysusError("forbidden", "the admin API answers loopback only");
      if (!m || !constantTimeEqual(m[1]!, adminToken))
        throw new DionysusError("unauthorized", "wrong admin token");
      await next();
    });
    const field = (b: unknown, k: string): string | undefined => {
      const v = (b as Record<string, unknown> | null)?.[k];
      return typeof v === "string" && v !== "" ? v : undefined;
    };
    app.post("/admin/users", async (c) => {
      const b = await readJson(c);
      const name = field(b, "name");
      if (!name) throw new DionysusError("invalid_input", "name is required");
      return c.json(await s.admin.addUser(name, field(b, "password")), 201);
    });
    app.post("/admin/keys", async (c) => {
      const user = field(await readJson(c), "user");
      if (!user) throw new DionysusError("invalid_input", "user is required");
      return c.json(await s.admin.createKey(user), 201);
    });
    app.get("/admin/devices", async (c) => {
      const user = c.req.query("user");
      if (!user) throw new DionysusError("invalid_input", "user is required");
      return c.json({ devices: await s.admin.devices(user) });
    });
    app.post("/admin/revoke", async (c) => {
      const b = await readJson(c);
      const device = field(b, "device");
      if (!device) throw new DionysusError("invalid_input", "device is required");
      return c.json(await s.admin.revoke(device, field(b, "user")));
    });
  }

  return app;
}

/** The device fields of a token request, without the absent optional ones. */
function deviceInfoOf(r: DeviceInfo): DeviceInfo {
  return {
    device_id: r.device_id,
    ...(r.device_name ? { device_name: r.device_name } : {}),
    ...(r.platform ? { platform: r.platform } : {}),
  };
}
