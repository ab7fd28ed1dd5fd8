/**
 * The VPS HTTP API (Hono). The user and device of every `/v1` call come from the access token, never
 * from the request; every query is scoped by them. Errors are problem+json (RFC 9457), except the
 * token endpoints, which answer in the OAuth shape `{error, error_description}` (RFC 6749 §5.2).
 *
 * This file holds what every request goes through (request id and log line, metrics, body limits,
 * UTF-8, rate limits, authentication, error answers); the routes are in ./routes/*.ts.
 */
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { routePath } from "hono/route";
import { DionysusError, isDionysusError, PROBLEM_CONTENT_TYPE, problemBody } from "../../core/errors.ts";
import { cidrContains, normaliseIp, parseCidr, parseIp } from "../../core/ip.ts";
import { PROTOCOL_VERSION } from "../../core/protocol/sync.ts";
import { VERSION } from "../../core/version.ts";
import { OAuthFailure } from "../auth/errors.ts";
import type { Principal } from "../auth/service.ts";
import { asDatabaseUnavailable } from "../db/pg-errors.ts";
import type { VpsInstance } from "../instance.ts";
import { listeningUrl } from "./listen-url.ts";
import {
  type AppEnv,
  OAuthRateLimited,
  RateLimited,
  type RouteContext,
  rateHeaders,
  requireUtf8,
  Unauthorized,
} from "./middleware.ts";
import { mountOpenApi } from "./openapi.ts";
import { statusPageRoutes } from "./pages/routes.tsx";
import { type RateDecision, RateLimiter } from "./rate-limit.ts";
import { RateCounterStore, SharedRateLimiter } from "./shared-rate-limit.ts";
import { signInBudget } from "./sign-in-budget.ts";

/** A request limiter: in this instance's memory, or shared through PostgreSQL. */
type Limiter = { hit(key: string): RateDecision | Promise<RateDecision> };

import { adminRoutes } from "./routes/admin.ts";
import { authRoutes } from "./routes/auth.ts";
import { deviceApprovalRoutes } from "./routes/device-approval.ts";
import { deviceRoutes } from "./routes/devices.ts";
import { eventRoutes } from "./routes/events.ts";
import { queryRoutes } from "./routes/queries.ts";
import { syncRoutes } from "./routes/sync.ts";
import { webhookRoutes } from "./routes/webhooks.ts";

export type { AppEnv } from "./middleware.ts";

export interface VpsAppDeps {
  vps: VpsInstance;
  /** Token for the loopback-only `/admin/*` API; without one that API does not exist. */
  adminToken?: string;
  /**
   * The socket peer's address (defaults to what Bun reports). When it is one of the configured
   * `trusted_proxies`, the client address is taken from `X-Forwarded-For`.
   */
  clientIp?: (c: Context<AppEnv>) => string | undefined;
  /**
   * The address the server listens on (`http://host:port`), for `verification_uri` when
   * `public_url` is not set. The Host header of a request is never used for it.
   */
  listenUrl?: () => string | undefined;
  /** Seconds between SSE heartbeat comments (15). */
  heartbeatS?: number;
  /** Failed sign-ins on `/device` allowed per user name from one address per 15 min (5). */
  signInFailuresPer15Min?: number;
  /** Failed sign-ins allowed per 15 min from one address, whatever the user name (20). */
  signInFailuresPerAddress?: number;
  /** Failed sign-ins allowed per 15 min for one user name, from every address together (50). */
  signInFailuresPerUser?: number;
}

/** Largest body of the auth endpoints, `/device`, webhooks and `/admin/*`. */
export const AUTH_BODY_BYTES = 8 * 1024;
/** Largest body of the other endpoints except push (which has `max_push_bytes`). */
export const QUERY_BODY_BYTES = 64 * 1024;

/** When a client may try again after a database outage (503 Retry-After, seconds). */
const DATABASE_RETRY_AFTER_S = 30;
const REQUEST_ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Builds the Hono app of one VPS instance. */
export function createVpsApp(deps: VpsAppDeps): Hono<AppEnv> {
  const { vps } = deps;
  const { config, auth, metrics, log } = vps;
  // On PostgreSQL the counters are shared by every instance (a device or address balanced over
  // several gets one limit); embedded PGlite serves one process and counts in memory.
  const counters = vps.database.kind === "postgres" ? new RateCounterStore(vps.database.db) : undefined;
  const limiterOf = (perMin: number): Limiter =>
    counters ? new SharedRateLimiter(counters, perMin) : new RateLimiter(perMin);
  const limiter = limiterOf(config.rate_limit_per_min);
  const userLimiter = limiterOf(config.user_rate_limit_per_min);
  const peerIp =
    deps.clientIp ?? ((c: Context<AppEnv>) => c.env?.requestIP?.(c.req.raw)?.address ?? undefined);
  const trusted = config.trusted_proxies.map((p) => parseCidr(p)!);
  const isTrusted = (ip: string) => {
    const parsed = parseIp(ip);
    return !!parsed && trusted.some((cidr) => cidrContains(cidr, parsed));
  };
  /**
   * The client's address: the socket peer, unless the peer is a trusted proxy; then the
   * right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left
   * are whatever the client chose to send).
   */
  const clientIp = (c: Context<AppEnv>): string | undefined => {
    const raw = peerIp(c);
    const peer = raw ? (normaliseIp(raw) ?? raw) : undefined;
    if (!peer || trusted.length === 0 || !isTrusted(peer)) return peer;
    const hops = (c.req.header("x-forwarded-for") ?? "")
      .split(",")
      .map((h) => h.trim())
      .filter((h) => h !== "");
    let client = peer;
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normaliseIp(hops[i]!);
      if (!hop) break;
      client = hop;
      if (!isTrusted(hop)) break;
    }
    return client;
  };
  const listenBase = () => deps.listenUrl?.() ?? listeningUrl(config.host, config.port);
  /** Base of `verification_uri`: `public_url`, else the listening address, never the Host header. */
  const publicBase = () => (config.public_url ?? listenBase()).replace(/\/+$/, "");
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

  /** Counts a request on each key; the tightest decision sets the headers and a 429. */
  async function limit(
    c: Context<AppEnv>,
    hits: Array<[Limiter, string]>,
    oauthError?: "slow_down" | "invalid_request",
  ): Promise<void> {
    let shown: RateDecision | undefined;
    const decisions = await Promise.all(hits.map(([l, key]) => l.hit(key)));
    for (const d of decisions) {
      if (
        !shown ||
        (!d.allowed && shown.allowed) ||
        (d.allowed === shown.allowed && d.remaining < shown.remaining)
      )
        shown = d;
    }
    if (!shown) return;
    for (const [k, v] of Object.entries(rateHeaders(shown))) c.header(k, v);
    if (!shown.allowed) throw oauthError ? new OAuthRateLimited(oauthError, shown) : new RateLimited(shown);
  }
  const ipKey = (c: Context<AppEnv>) => `ip:${clientIp(c) ?? "unknown"}`;

  const byIp: MiddlewareHandler<AppEnv> = async (c, next) => {
    await limit(c, [[limiter, ipKey(c)]]);
    await next();
  };

  // Every body is bounded before it is read, and must be UTF-8. Push has its own (larger) limit,
  // applied after authentication so that no one without a token can make the server read 5 MB.
  const isOAuth = (path: string) => path === "/v1/auth/token" || path === "/v1/auth/device";
  app.use("*", async (c, next) => {
    const path = c.req.path;
    if (path === "/v1/sync/push") return next();
    const small =
      path.startsWith("/v1/auth/") ||
      path === "/device" ||
      path === "/signin" ||
      path.startsWith("/admin/") ||
      path.startsWith("/v1/webhooks");
    const max = small ? AUTH_BODY_BYTES : QUERY_BODY_BYTES;
    const oauth = isOAuth(path);
    return bodyLimit({
      maxSize: max,
      onError: () => {
        const msg = `the request body is over ${max} bytes`;
        throw oauth
          ? new OAuthFailure("invalid_request", msg, 413)
          : new DionysusError("payload_too_large", msg, { details: { limit_bytes: max } });
      },
    })(c, async () => {
      await requireUtf8(c, oauth);
      await next();
    });
  });

  const requireAuth: MiddlewareHandler<AppEnv> = async (c, next) => {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    const principal = m ? await auth.authenticate(m[1]!) : undefined;
    if (!principal) {
      await limit(c, [[limiter, ipKey(c)]]);
      throw new Unauthorized(
        m ? "the access token is wrong, expired or revoked" : "missing bearer access token",
        m ? 'Bearer realm="dionysus", error="invalid_token"' : 'Bearer realm="dionysus"',
      );
    }
    c.set("principal", principal);
    await limit(c, [
      [limiter, `device:${principal.user_id}:${principal.device_id}`],
      [userLimiter, `user:${principal.user_id}`],
    ]);
    const key = `${principal.user_id}\u0000${principal.device_id}`;
    const t = Date.now();
    if (t - (lastTouched.get(key) ?? 0) > 60_000) {
      lastTouched.set(key, t);
      if (lastTouched.size > 100_000) lastTouched.clear();
      await auth.touchDevice(principal.user_id, principal.device_id);
    }
    await next();
  };

  app.onError((thrown, c) => {
    const requestId = c.get("requestId");
    // zValidator("json") throws Hono's 400 for a JSON body that does not parse (the only
    // HTTPException this app can meet).
    // A database outage (disk full, no connection, shutting down) is a 503 with its reason, not
    // a 500: the client keeps its writes and tries again.
    const err =
      thrown instanceof HTTPException && thrown.status === 400
        ? new DionysusError("invalid_input", "the body is not valid JSON")
        : asDatabaseUnavailable(thrown);
    if (err instanceof OAuthFailure) {
      const headers: Record<string, string> = { "Cache-Control": "no-store", Pragma: "no-cache" };
      if (err instanceof OAuthRateLimited)
        Object.assign(headers, rateHeaders(err.decision), { "Retry-After": String(err.decision.resetS) });
      return c.json(err.toJSON(), err.status as 400, headers);
    }
    if (isDionysusError(err)) {
      const headers: Record<string, string> = { "Content-Type": PROBLEM_CONTENT_TYPE };
      if (err instanceof RateLimited) {
        Object.assign(headers, rateHeaders(err.decision), { "Retry-After": String(err.decision.resetS) });
      }
      if (err instanceof Unauthorized) headers["WWW-Authenticate"] = err.challenge;
      if (err !== thrown && err.code === "unavailable") {
        // The operator needs the database's own words; the client gets the plain reason.
        headers["Retry-After"] = String(DATABASE_RETRY_AFTER_S);
        log({
          level: "warn",
          msg: "database unavailable",
          request_id: requestId,
          error: thrown instanceof Error ? thrown.message : String(thrown),
        });
      }
      return c.body(problemBody(err, requestId), err.status as 400, headers);
    }
    log({
      level: "error",
      msg: "unhandled error",
      request_id: requestId,
      error: err instanceof Error ? err.message : String(err),
    });
    const internal = new DionysusError("internal", `internal error (request id ${requestId})`);
    return c.body(problemBody(internal, requestId), 500, { "Content-Type": PROBLEM_CONTENT_TYPE });
  });

  app.notFound((c) =>
    c.body(
      problemBody(new DionysusError("not_found", `no route ${c.req.method} ${new URL(c.req.url).pathname}`)),
      404,
      { "Content-Type": PROBLEM_CONTENT_TYPE },
    ),
  );

  // ---- health and metrics -------------------------------------------------------------------
  app.get("/health", async (c) => {
    const ok = await vps.database.ping();
    return c.json(
      {
        status: ok ? "ok" : "unavailable",
        version: VERSION,
        protocol_version: PROTOCOL_VERSION,
        database: ok ? "ok" : "unreachable",
      },
      ok ? 200 : 503,
    );
  });
  app.get("/metrics", (c) => c.body(metrics.render(), 200, { "Content-Type": "text/plain; version=0.0.4" }));
  mountOpenApi(app);

  // ---- the routes ---------------------------------------------------------------------------
  const ctx: RouteContext = {
    vps,
    requireAuth,
    byIp,
    limitOAuth: (c, error) => limit(c, [[limiter, ipKey(c)]], error),
    clientIp,
    publicBase,
  };
  app.route("/", authRoutes(ctx));
  // One budget of failed password sign-ins for /device and the page's /signin together.
  const signIns = signInBudget(vps.database, {
    ...(deps.signInFailuresPer15Min !== undefined ? { perPair: deps.signInFailuresPer15Min } : {}),
    ...(deps.signInFailuresPerAddress !== undefined ? { perAddress: deps.signInFailuresPerAddress } : {}),
    ...(deps.signInFailuresPerUser !== undefined ? { perUser: deps.signInFailuresPerUser } : {}),
  });
  app.route("/", deviceApprovalRoutes(ctx, signIns));
  app.route("/", deviceRoutes(ctx));
  app.route("/", syncRoutes(ctx));
  app.route("/", eventRoutes(ctx, deps.heartbeatS));
  app.route("/", queryRoutes(ctx));
  app.route("/", webhookRoutes(ctx));
  if (deps.adminToken) app.route("/", adminRoutes(ctx, deps.adminToken));
  app.route("/", statusPageRoutes(ctx, signIns));

  return app;
}
