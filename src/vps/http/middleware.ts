/**
 * What every route module of the VPS app shares: the Hono environment, the errors the app answers
 * with, body reading and validation, and the {@link RouteContext} app.ts hands to each module.
 */
import { timingSafeEqual } from "node:crypto";
import { zValidator } from "@hono/zod-validator";
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { DionysusError, describeIssues } from "../../core/errors.ts";
import { OAuthFailure } from "../auth/errors.ts";
import type { Principal } from "../auth/service.ts";
import type { VpsInstance } from "../instance.ts";
import type { RateDecision } from "./rate-limit.ts";

/** What Bun passes as the second `fetch` argument (the server), when there is one. */
export interface BunServerLike {
  timeout?(req: Request, seconds: number): void;
  requestIP?(req: Request): { address: string } | null;
}

export type AppEnv = {
  Bindings: BunServerLike | undefined;
  Variables: { principal: Principal; requestId: string };
};

/** What app.ts gives each route module. */
export interface RouteContext {
  vps: VpsInstance;
  /** Authenticates the bearer access token and sets `principal`; rate-limited per device and user. */
  requireAuth: MiddlewareHandler<AppEnv>;
  /** Rate limit per client address (for routes without a token). */
  byIp: MiddlewareHandler<AppEnv>;
  /** Counts one request of the client address; over the limit, a 429 in the OAuth shape. */
  limitOAuth(c: Context<AppEnv>, error: "slow_down" | "invalid_request"): Promise<void>;
  /** The client's address (see app.ts: trusted proxies). */
  clientIp(c: Context<AppEnv>): string | undefined;
  /** Base of `verification_uri`: `public_url`, else the listening address, never the Host header. */
  publicBase(): string;
}

export class RateLimited extends DionysusError {
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
export class OAuthRateLimited extends OAuthFailure {
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

export class Unauthorized extends DionysusError {
  constructor(
    message: string,
    readonly challenge: string,
  ) {
    super("unauthorized", message);
  }
}

export function rateHeaders(d: RateDecision): Record<string, string> {
  return {
    "RateLimit-Limit": String(d.limit),
    "RateLimit-Remaining": String(d.remaining),
    "RateLimit-Reset": String(d.resetS),
  };
}

export async function readJson(c: Context<AppEnv>): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw new DionysusError("invalid_input", "the body is not valid JSON");
  }
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * A JSON body must say so (`Content-Type: application/json`): `zValidator("json", …)`, which comes
 * next, reads the body only then (a body that does not parse is a 400, see app.ts onError).
 */
export const jsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim();
  if (!JSON_TYPE.test(type))
    throw new DionysusError(
      "unsupported_media_type",
      "the request body must be JSON (Content-Type: application/json)",
    );
  await next();
};

interface ValidationResult {
  success: boolean;
  error?: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> };
}

/** zValidator hook: a failed validation is a problem+json 400 `invalid_input` saying what is wrong. */
export function invalidInput(result: ValidationResult): void {
  if (!result.success && result.error)
    throw new DionysusError("invalid_input", describeIssues(result.error.issues));
}

/** zValidator hook for `z.object({ <param>: schema })`: the message as the parameter's own schema gives it. */
export function invalidParam(result: ValidationResult): void {
  if (!result.success && result.error)
    throw new DionysusError(
      "invalid_input",
      describeIssues(result.error.issues.map((i) => ({ ...i, path: i.path.slice(1) }))),
    );
}

/**
 * zValidator on the query string, one value a parameter (the first, as `c.req.query()` gives);
 * with `dropEmpty`, an empty parameter (`?memory_id=`) counts as absent.
 */
export function validQuery<S extends z.ZodType>(schema: S, opts: { dropEmpty?: boolean } = {}) {
  const oneValueEach = (query: unknown) =>
    Object.fromEntries(
      Object.entries(query as Record<string, string | string[]>)
        .map(([k, v]) => [k, Array.isArray(v) ? v[0] : v] as const)
        .filter(([, v]) => !opts.dropEmpty || v !== ""),
    );
  return zValidator("query", z.preprocess(oneValueEach, schema), invalidInput);
}

/**
 * Validates an OAuth request body (from {@link readFormOrJson}); what is wrong is an OAuth
 * `invalid_request`. (The OAuth bodies are a form or JSON, read before validation: the token
 * endpoint rate-limits by `grant_type` first; so no zValidator here.)
 */
export function parseOAuth<S extends z.ZodType>(schema: S, body: Record<string, unknown>): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new OAuthFailure("invalid_request", describeIssues(parsed.error.issues));
  return parsed.data;
}

/** Token endpoints accept `application/x-www-form-urlencoded` (RFC 6749) and JSON. */
export async function readFormOrJson(c: Context<AppEnv>): Promise<Record<string, unknown>> {
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
export async function requireUtf8(c: Context<AppEnv>, oauth: boolean): Promise<void> {
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

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
