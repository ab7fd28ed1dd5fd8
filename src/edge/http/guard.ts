/**
 * Who may talk to the local API. It listens on loopback, but a web page in the user's browser
 * can still reach loopback: through DNS rebinding (a foreign name resolving to 127.0.0.1; the
 * Host header gives it away) or through a cross-origin request (the Origin header gives it away).
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { DionysusError } from "../../core/errors.ts";

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

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_NAMES.has(hostName(host));
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
    allowHeaders: ["Content-Type", "Authorization"],
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
