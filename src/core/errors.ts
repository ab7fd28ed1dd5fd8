/**
 * One error type for the whole codebase. Every failure that reaches a user carries a stable
 * `code` (documented below and in the README), an HTTP `status`, optional `details` and the
 * original `cause`. HTTP renders it as `application/problem+json` (RFC 9457); the CLI prints
 * one line and exits with {@link exitCodeFor}.
 */

/** Stable error codes. Never rename one: scripts match on them. */
export const ErrorCodes = {
  /** The request or input is malformed or fails validation (400). */
  invalid_input: 400,
  /** The caller is not authenticated, or its credentials are wrong, expired or revoked (401). */
  unauthorized: 401,
  /** Authenticated, but not allowed to do this (403). */
  forbidden: 403,
  /** The resource does not exist (for this user) (404). */
  not_found: 404,
  /** The request conflicts with the current state (409). */
  conflict: 409,
  /** The body or content is larger than allowed (413). */
  payload_too_large: 413,
  /** Unsupported media type (415). */
  unsupported_media_type: 415,
  /** Too many requests; see Retry-After (429). */
  rate_limited: 429,
  /** Unexpected failure; logged with the request id (500). */
  internal: 500,
  /** A dependency (the VPS, an LLM, the database) is unavailable (503). */
  unavailable: 503,
  /** The local database file is corrupt or not a Dionysus database; it is left untouched. */
  db_corrupt: 500,
  /** The local database was written by a newer Dionysus; it is left untouched. */
  db_too_new: 500,
  /** The configuration is invalid. */
  config_invalid: 400,
  /** Another process holds a resource (for example the port). */
  busy: 409,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface DionysusErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  status?: number;
}

export class DionysusError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: DionysusErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DionysusError";
    this.code = code;
    this.status = options.status ?? ErrorCodes[code];
    this.details = options.details;
  }
}

export const isDionysusError = (e: unknown): e is DionysusError => e instanceof DionysusError;

/** The message of anything thrown. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** The wait a server asked for (`details.retry_after_ms`, from the Retry-After of a 429 or 503), in ms. */
export function retryAfterOf(err: unknown): number | undefined {
  const ms = isDionysusError(err) ? err.details?.retry_after_ms : undefined;
  return typeof ms === "number" ? ms : undefined;
}

/** RFC 9457 problem details, as every HTTP error is rendered. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
  [extra: string]: unknown;
}

const titles: Partial<Record<ErrorCode, string>> = {
  invalid_input: "Invalid input",
  unauthorized: "Unauthorized",
  forbidden: "Forbidden",
  not_found: "Not found",
  conflict: "Conflict",
  payload_too_large: "Payload too large",
  unsupported_media_type: "Unsupported media type",
  rate_limited: "Too many requests",
  unavailable: "Service unavailable",
};

export function toProblem(err: DionysusError, instance?: string): Problem {
  return {
    type: `https://dionysus.dev/errors/${err.code}`,
    title: titles[err.code] ?? "Error",
    status: err.status,
    detail: err.message,
    code: err.code,
    ...(instance ? { instance } : {}),
    ...(err.details ?? {}),
  };
}

/** The media type of every HTTP error body. */
export const PROBLEM_CONTENT_TYPE = "application/problem+json";

/**
 * The body of an HTTP error answer, as both servers send it: {@link toProblem} as JSON. Each
 * server names the occurrence in `instance` its own way (the edge: the request path; the VPS:
 * the request id, also sent as `x-request-id`).
 */
export function problemBody(err: DionysusError, instance?: string): string {
  return JSON.stringify(toProblem(err, instance));
}

/** Whether `code` is one of {@link ErrorCodes}. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && Object.hasOwn(ErrorCodes, code);
}

/**
 * The code an HTTP status stands for when an answer names no known code: the status's own code
 * (400 `invalid_input`, 401 `unauthorized`, 403 `forbidden`, 404 `not_found`, 409 `conflict`,
 * 413 `payload_too_large`, 415 `unsupported_media_type`, 429 `rate_limited`, 502/503/504
 * `unavailable`), any other 4xx `invalid_input`, anything else `internal`.
 */
export function codeForStatus(status: number): ErrorCode {
  switch (status) {
    case 400:
      return "invalid_input";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    case 409:
      return "conflict";
    case 413:
      return "payload_too_large";
    case 415:
      return "unsupported_media_type";
    case 429:
      return "rate_limited";
    case 502:
    case 503:
    case 504:
      return "unavailable";
  }
  return status >= 400 && status < 500 ? "invalid_input" : "internal";
}

/**
 * Turns an HTTP error answer back into the DionysusError it was rendered from (the inverse of
 * {@link toProblem}). `body` is the parsed JSON body, if any: its `code` is kept when it is a
 * known one, otherwise the code comes from the status ({@link codeForStatus}); the message is its
 * `detail` (or an OAuth `error_description`), else `fallbackDetail`. The status is kept.
 */
export function fromProblem(
  status: number,
  body: unknown,
  fallbackDetail: string,
  details?: Record<string, unknown>,
): DionysusError {
  const p = (body !== null && typeof body === "object" ? body : {}) as {
    code?: unknown;
    detail?: unknown;
    error_description?: unknown;
  };
  const code = isErrorCode(p.code) ? p.code : codeForStatus(status);
  const detail =
    typeof p.detail === "string"
      ? p.detail
      : typeof p.error_description === "string"
        ? p.error_description
        : fallbackDetail;
  return new DionysusError(code, detail, { status, ...(details ? { details } : {}) });
}

/** Process exit codes of the CLI. 0 ok, 1 generic failure, 2 usage/input, 3 not found,
 * 4 auth, 5 unavailable (daemon or VPS), 6 database refused. */
export function exitCodeFor(err: DionysusError): number {
  switch (err.code) {
    case "invalid_input":
    case "payload_too_large":
    case "unsupported_media_type":
    case "config_invalid":
      return 2;
    case "not_found":
      return 3;
    case "unauthorized":
    case "forbidden":
      return 4;
    case "unavailable":
    case "rate_limited":
    case "busy":
      return 5;
    case "db_corrupt":
    case "db_too_new":
      return 6;
    default:
      return 1;
  }
}

/** Turns a zod issue list into one readable line: `content: must not be empty; limit: ...`. */
export function describeIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>) {
  return issues
    .map((i) => (i.path.length ? `${i.path.map(String).join(".")}: ${i.message}` : i.message))
    .join("; ");
}
