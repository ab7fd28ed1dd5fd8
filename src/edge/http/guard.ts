/**
 * Who may talk to the local API. It listens on loopback, but a web page in the user's browser
 * can still reach loopback: through DNS rebinding (a foreign name resolving to 127.0.0.1; the
 * Host header gives it away) or through a cross-origin request (the Origin header gives it away).
 */
import type { Context, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { DionysusError } from "../../core/errors.ts";
import { secretMatcher } from "../api-token.ts";

const LOOPBACK_NAMES = new Set(["localhost", "localhost.", "127.0.0.1", "[::1]", "::1"]);
const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]"]);

/** The host name of a Host header, without the port. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith("[")) {
    const end = h.indexOf("]");
    return end === -1 ? h : h.slice(0, end + 1);
  }
  const colon = h.indexOf(":");
  return colon === -1 ? h : h.slice(0, colon);
}

/**
 * Refuses requests whose Host is not a loopback name. When the daemon is configured to listen
 * on another address, that address is accepted too; on a wildcard address (0.0.0.0) the user
 * has chosen to expose the API and any Host is accepted.
 */
export function hostGuard(configuredHost: string): MiddlewareHandler {
  const configured = hostName(
    configuredHost.includes(":") && !configuredHost.startsWith("[") ? `[${configuredHost}]` : configuredHost,
  );
  const anyHost = WILDCARD_HOSTS.has(configured);
  return async (c, next) => {
    if (!anyHost) {
      const header = c.req.header("host") ?? new URL(c.req.url).host;
      const name = hostName(header);
      if (!LOOPBACK_NAMES.has(name) && name !== configured)
        throw new DionysusError(
          "forbidden",
          `Host '${header}' is not allowed: the local API answers only loopback names (DNS rebinding protection)`,
        );
    }
    await next();
  };
}

/**
 * Refuses cross-origin browser requests unless their origin is in `allowedOrigins`, and answers
 * CORS (including preflight) for the allowed ones. Requests without an Origin (curl, the CLI,
 * other programs) pass; a browser request without Origin but marked cross-site does not.
 */
export function originGuard(allowedOrigins: readonly string[]): MiddlewareHandler {
  const allowed = new Set(allowedOrigins.map((o) => o.replace(/\/+$/, "").toLowerCase()));
  const corsMw = cors({
    origin: (origin) => (allowed.has(origin.toLowerCase()) ? origin : null),
    allowMethods: ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
    // The MCP headers let an allowed page speak MCP to /mcp (its session id must be readable).
    allowHeaders: [
      "Content-Type",
      "Authorization",
      "Mcp-Session-Id",
      "Mcp-Protocol-Version",
      "Last-Event-ID",
    ],
    exposeHeaders: ["Mcp-Session-Id"],
    maxAge: 600,
  });
  return async (c, next) => {
    const origin = c.req.header("origin");
    if (origin === undefined) {
      const site = c.req.header("sec-fetch-site");
      if (site === "cross-site" || site === "same-site")
        throw new DionysusError("forbidden", "cross-origin browser requests are not allowed");
      return next();
    }
    const own =
      `${new URL(c.req.url).protocol}//${c.req.header("host") ?? new URL(c.req.url).host}`.toLowerCase();
    if (origin.toLowerCase() === own) return next();
    if (!allowed.has(origin.toLowerCase()))
      throw new DionysusError(
        "forbidden",
        `origin '${origin}' is not allowed; add it to allowed_origins (DIONYSUS_ALLOWED_ORIGINS) to let it call the local API`,
      );
    return corsMw(c, next);
  };
}

/** The cookie a browser authenticates with (see {@link sessionCookie} and ./browser-session.ts). */
export const SESSION_COOKIE = "dionysus_session";

/** Routes anyone who passes the Host and Origin guards may GET without the token: they hold no
 * user data (the API's description, its reference page, the pages' style sheet), or are the way
 * to a session (`/session`, which wants a ticket). */
const OPEN_ROUTES = new Set(["/health", "/session", "/openapi.json", "/docs", "/assets/status.css"]);

export interface TokenGuardOptions {
  /** Whether a cookie value is the daemon's browser session (constant time). */
  isSession(presented: string): boolean;
  /** The answer to a browser opening `/` with no credentials at all (the sign-in page). */
  signIn?(c: Context): Response | Promise<Response>;
}

/**
 * Requires the API token on every route but `GET /health`, `GET /session`, `GET /openapi.json`,
 * `GET /docs`, `GET /assets/status.css` and `POST /session` (the sign-in form, which checks the
 * token itself): as `Authorization: Bearer <token>`, or as the session cookie a browser gets in
 * exchange for a ticket or the token (./browser-session.ts). `token: null` turns the check off
 * (in-process tests only; the daemon always has a token). Both secrets are compared in constant
 * time.
 */
export function tokenGuard(token: string | null, opts: TokenGuardOptions): MiddlewareHandler {
  const isToken = token === null ? () => false : secretMatcher(token);
  return async (c, next) => {
    if (token === null) return next();
    if ((c.req.method === "GET" || c.req.method === "HEAD") && OPEN_ROUTES.has(c.req.path)) return next();
    if (c.req.method === "POST" && c.req.path === "/session") return next();
    const header = c.req.header("authorization") ?? "";
    const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)?.[1];
    if (bearer !== undefined && isToken(bearer)) return next();
    const cookie = readCookie(c.req.header("cookie"), SESSION_COOKIE);
    if (bearer === undefined && cookie !== undefined && opts.isSession(cookie)) return next();
    // A browser opening the status page without a session gets the sign-in page.
    if (!header && c.req.method === "GET" && c.req.path === "/" && opts.signIn) return opts.signIn(c);
    throw new DionysusError(
      "unauthorized",
      header
        ? "the API token is wrong; the right one is in the file api-token of the daemon's data dir"
        : "this API needs 'Authorization: Bearer <token>'; the token is in the file api-token of the daemon's data dir",
    );
  };
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Whether a host name or address (from a config, a URL or a socket) stays on this machine:
 * `localhost`, 127.0.0.0/8, `::1` (brackets allowed). */
export function isLoopbackName(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "localhost." || isLoopbackAddress(h);
}

/** Whether an IP address (as a socket reports it) is on the loopback network. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  return a === "::1" || /^127\.\d+\.\d+\.\d+$/.test(a) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(a);
}

/** `Set-Cookie` for the browser session: HttpOnly (no script reads it), SameSite=Strict (no
 * other site's request carries it), no Max-Age (gone when the browser closes). Not `Secure`: the
 * daemon speaks plain http, and only some browsers keep a Secure cookie set over http (on
 * `localhost`/`127.0.0.1` only); the session is handed out over loopback alone, whose traffic
 * never leaves the machine, so `Secure` would add nothing but a page that fails to sign in. */
export function sessionCookie(session: string): string {
  return `${SESSION_COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`;
}
