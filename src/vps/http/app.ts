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
import { cidrContains, normaliseIp, parseCidr, parseIp } from "../../core/ip.ts";
import {
  API_KEY_GRANT,
  DEVICE_CODE_GRANT,
  DEVICE_SPLIT_GRANT,
  DeviceAuthorizationRequest,
  DeviceId,
  type DeviceInfo,
  TokenRequest,
  WebhookId,
  WebhookRequest,
} from "../../core/protocol/auth.ts";
import { AskRequest, GraphQueryRequest, SearchRequest } from "../../core/protocol/heavy.ts";
import { ConflictsQuery, PROTOCOL_VERSION, PullQuery, PushRequest } from "../../core/protocol/sync.ts";
import { isUuid } from "../../core/uuid.ts";
import { VERSION } from "../../core/version.ts";
import { OAuthFailure } from "../auth/errors.ts";
import { type Principal, USER_NAME_RE } from "../auth/service.ts";
import type { HubStream } from "../push/hub.ts";
import type { VpsServices } from "../services.ts";
import { DEVICE_PAGE_CSP, type DevicePageState, renderDevicePage } from "./device-page.ts";
import { listeningUrl } from "./listen-url.ts";
import { FailureBudget, type RateDecision, RateLimiter } from "./rate-limit.ts";

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

/** A 429 on the OAuth endpoints, in the OAuth shape (RFC 6749 §5.2, RFC 8628 §3.5). */
class OAuthRateLimited extends OAuthFailure {
  constructor(
    error: "slow_down" | "invalid_request",
    readonly decision: RateDecision,
  ) {
    super(
      error,
      `rate limit of ${decision.limit} requests per minute exceeded; retry in ${decision.resetS} s`,
      429,
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

const fatalUtf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A body must be valid UTF-8: a lossy decode would store U+FFFD in place of what was sent. Form
 * bodies are checked after percent-decoding too (`%FF` is not UTF-8 either).
 */
async function requireUtf8(c: Context<AppEnv>, oauth: boolean): Promise<void> {
  if (!c.req.raw.body) return;
  const fail = () => {
    const msg = "the request body is not valid UTF-8";
    throw oauth ? new OAuthFailure("invalid_request", msg) : new DionysusError("invalid_input", msg);
  };
  let text: string;
  try {
    text = fatalUtf8.decode(await c.req.arrayBuffer());
  } catch {
    return fail();
  }
  if ((c.req.header("content-type") ?? "").includes("application/x-www-form-urlencoded")) {
    for (const part of text.split("&"))
      try {
        decodeURIComponent(part.replace(/\+/g, " "));
      } catch {
        return fail();
      }
  }
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
  const userLimiter = new RateLimiter(config.user_rate_limit_per_min);
  const signInFailures = new FailureBudget();
  const signInRules = (user: string, ip: string) => [
    { key: `pair:${ip}\u0000${user}`, limit: deps.signInFailuresPer15Min ?? 5 },
    { key: `ip:${ip}`, limit: deps.signInFailuresPerAddress ?? 20 },
    { key: `user:${user}`, limit: deps.signInFailuresPerUser ?? 50 },
  ];
  const heartbeatMs = (deps.heartbeatS ?? 15) * 1000;
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
  function limit(
    c: Context<AppEnv>,
    hits: Array<[RateLimiter, string]>,
    oauthError?: "slow_down" | "invalid_request",
  ): void {
    let shown: RateDecision | undefined;
    for (const [l, key] of hits) {
      const d = l.hit(key);
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
    limit(c, [[limiter, ipKey(c)]]);
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
      limit(c, [[limiter, ipKey(c)]]);
      throw new Unauthorized(
        m ? "the access token is wrong, expired or revoked" : "missing bearer access token",
        m ? 'Bearer realm="dionysus", error="invalid_token"' : 'Bearer realm="dionysus"',
      );
    }
    c.set("principal", principal);
    limit(c, [
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

  app.onError((err, c) => {
    const requestId = c.get("requestId");
    if (err instanceof OAuthFailure) {
      const headers: Record<string, string> = { "Cache-Control": "no-store", Pragma: "no-cache" };
      if (err instanceof OAuthRateLimited)
        Object.assign(headers, rateHeaders(err.decision), { "Retry-After": String(err.decision.resetS) });
      return c.json(err.toJSON(), err.status as 400, headers);
    }
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

  // ---- auth -----------------------------------------------------------------------------------
  app.post("/v1/auth/device", async (c) => {
    limit(c, [[limiter, ipKey(c)]], "invalid_request");
    const parsed = DeviceAuthorizationRequest.safeParse(await readFormOrJson(c));
    if (!parsed.success) throw new OAuthFailure("invalid_request", describeIssues(parsed.error.issues));
    const res = await auth.startDeviceAuthorization(parsed.data, `${publicBase()}/device`);
    return c.json(res, 200, { "Cache-Control": "no-store" });
  });

  app.post("/v1/auth/token", async (c) => {
    let body: Record<string, unknown> | undefined;
    let unreadable: unknown;
    try {
      body = await readFormOrJson(c);
    } catch (err) {
      unreadable = err;
    }
    // RFC 8628 §3.5: a device polling too fast is told to slow_down; other grants have no
    // rate-limit error in RFC 6749 §5.2, so they get invalid_request (status 429, Retry-After).
    limit(c, [[limiter, ipKey(c)]], body?.grant_type === DEVICE_CODE_GRANT ? "slow_down" : "invalid_request");
    if (!body) throw unreadable;
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
    if (origin && origin !== new URL(c.req.url).origin && origin !== publicBase())
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
    // One failure is reserved before the (slow) password check and refunded when it succeeds, so
    // concurrent guesses cannot all be checked before the first failure counts.
    const reservation = signInFailures.reserve(signInRules(username, clientIp(c) ?? "unknown"));
    if (!reservation.ok)
      return c.html(
        renderDevicePage({
          code,
          username,
          message: {
            text: `Too many failed sign-ins. Wait ${Math.ceil(reservation.resetS / 60)} minutes and try again.`,
            ok: false,
          },
        }),
        429,
        {
          "Content-Security-Policy": DEVICE_PAGE_CSP,
          "X-Frame-Options": "DENY",
          "Cache-Control": "no-store",
          "Referrer-Policy": "no-referrer",
          "Retry-After": String(reservation.resetS),
        },
      );
    // A name that cannot exist is never looked up (the check costs the same either way).
    const user =
      username && password
        ? await auth.verifyPassword(USER_NAME_RE.test(username) ? username : "", password)
        : undefined;
    if (user) reservation.refund();
    if (!user) {
      return page(
        c,
        { code, username, device: pending, message: { text: "Wrong user name or password.", ok: false } },
        401,
      );
    }
    const room = await auth.deviceRoomFor(user.id, pending.device_id);
    if (!room.ok)
      return page(c, { code, username, device: pending, message: { text: room.reason, ok: false } }, 409);
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

  app.delete("/v1/devices/:id", requireAuth, async (c) => {
    const id = DeviceId.safeParse(c.req.param("id"));
    if (!id.success) throw new DionysusError("invalid_input", describeIssues(id.error.issues));
    return c.json(await auth.revokeDevice(c.get("principal").user_id, id.data));
  });

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
    async (c, next) => {
      await requireUtf8(c, false);
      await next();
    },
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
    const query = Object.fromEntries(Object.entries(c.req.query()).filter(([, v]) => v !== ""));
    const parsed = ConflictsQuery.safeParse(query);
    if (!parsed.success) throw new DionysusError("invalid_input", describeIssues(parsed.error.issues));
    const { limit: lim, memory_id } = parsed.data;
    return c.json({
      conflicts: await sync.conflicts(c.get("principal").user_id, {
        limit: lim,
        ...(memory_id ? { memory_id } : {}),
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
    const id = WebhookId.safeParse(c.req.param("id"));
    if (!id.success) throw new DionysusError("invalid_input", describeIssues(id.error.issues));
    await webhooks.remove(c.get("principal"), id.data);
    return c.body(null, 204);
  });

  // ---- loopback-only administration (used by `dionysus vps ...` while a server holds PGlite) ---
  const adminToken = deps.adminToken;
  if (adminToken) {
    app.use("/admin/*", async (c, next) => {
      const ip = clientIp(c);
      const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
      // A request a proxy forwarded is not a local one, whatever address the proxy has.
      const forwarded =
        c.req.header("x-forwarded-for") !== undefined || c.req.header("forwarded") !== undefined;
      if (!ip || !LOOPBACK.has(ip) || forwarded)
        throw new DionysusError("forbidden", "the admin API answers loopback only");
      if (!m || !constantTimeEqual(m[1]!, adminToken))
        throw new DionysusError("unauthorized", "wrong admin token");
      await next();
    });
    const field = (b: unknown, k: string): string | undefined => {
      const v = (b as Record<string, unknown> | null)?.[k];
      if (typeof v === "string" && v.includes("\u0000"))
        throw new DionysusError("invalid_input", `${k} must not contain NUL`);
      return typeof v === "string" && v !== "" ? v : undefined;
    };
    const queryField = (c: Context<AppEnv>, k: string): string => {
      const v = field({ [k]: c.req.query(k) }, k);
      if (!v) throw new DionysusError("invalid_input", `${k} is required`);
      return v;
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
    app.get("/admin/keys", async (c) => c.json({ keys: await s.admin.listKeys(queryField(c, "user")) }));
    app.post("/admin/keys/revoke", async (c) => {
      const b = await readJson(c);
      const user = field(b, "user");
      const key = field(b, "key");
      if (!user || !key) throw new DionysusError("invalid_input", "user and key are required");
      return c.json(await s.admin.revokeKey(user, key));
    });
    app.get("/admin/devices", async (c) => c.json({ devices: await s.admin.devices(queryField(c, "user")) }));
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
