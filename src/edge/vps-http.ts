/**
 * Plumbing shared by the edge's HTTP clients of the VPS (the sync client and the heavy-query
 * client): the ky instance, network failures → `unavailable`, non-2xx answers → DionysusError,
 * schema-checked JSON bodies and a Server-Sent Events reader.
 */
import ky, { type KyInstance } from "ky";
import type { z } from "zod";
import { parseRetryAfter } from "../core/backoff.ts";
import { DionysusError, type ErrorCode, ErrorCodes } from "../core/errors.ts";

/** Where the VPS is and how to reach it. */
export interface VpsHttpOptions {
  baseUrl: string;
  /** Wait for an answer (ms), 15 s by default. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** A ky instance on the VPS's base URL: no retries, no throwing on HTTP errors. */
export function createVpsHttp(opts: VpsHttpOptions): KyInstance {
  return ky.create({
    prefixUrl: opts.baseUrl.replace(/\/+$/, ""),
    timeout: opts.timeoutMs ?? 15_000,
    retry: 0,
    throwHttpErrors: false,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}

/** How a client words and classifies failures; the two clients differ and keep their wording. */
export interface FailureStyle {
  /** Start of the message before the status, e.g. `VPS answered`. */
  prefix: string;
  /**
   * `status`: the code follows the HTTP status alone. `body`: the problem's own `code` when it
   * is a known one, but 5xx, 401 and 429 always by status.
   */
  codeFrom: "status" | "body";
  /** Say "no answer in time" for a timeout instead of ky's own message. */
  plainTimeout?: boolean;
}

/** Runs a request; network failures and timeouts become `unavailable`, aborts pass through. */
export async function sendOrUnavailable(
  call: () => Promise<Response>,
  baseUrl: string,
  style: Pick<FailureStyle, "plainTimeout"> = {},
): Promise<Response> {
  try {
    return await call();
  } catch (cause) {
    if (cause instanceof DionysusError) throw cause;
    if (cause instanceof Error && cause.name === "AbortError") throw cause;
    const why =
      style.plainTimeout && cause instanceof Error && cause.name === "TimeoutError"
        ? "no answer in time"
        : cause instanceof Error
          ? cause.message
          : String(cause);
    throw new DionysusError("unavailable", `VPS unreachable at ${baseUrl}: ${why}`, { cause });
  }
}

/** The DionysusError for a non-2xx answer whose body (if JSON) is `json`. */
export function vpsFailure(res: Response, json: unknown, style: FailureStyle): DionysusError {
  const problem = (json ?? {}) as { detail?: string; code?: string; error_description?: string };
  const detail = problem.detail ?? problem.error_description ?? res.statusText;
  const retryAfter = parseRetryAfter(res.headers.get("retry-after"));
  const details = {
    http_status: res.status,
    ...(retryAfter !== undefined ? { retry_after_ms: retryAfter } : {}),
  };
  const code =
    style.codeFrom === "status" ? codeOfStatus(res.status) : codeOfProblem(res.status, problem.code);
  return new DionysusError(code, `${style.prefix} ${res.status}: ${detail}`, { details });
}

function codeOfStatus(status: number): ErrorCode {
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  if (status === 413) return "payload_too_large";
  if (status === 429) return "rate_limited";
  if (status >= 500) return "unavailable";
  return "invalid_input";
}

function codeOfProblem(status: number, code: string | undefined): ErrorCode {
  if (status >= 500) return "unavailable";
  if (status === 401) return "unauthorized";
  if (status === 429) return "rate_limited";
  return code && code in ErrorCodes ? (code as ErrorCode) : "invalid_input";
}

/** Reads a JSON answer: non-2xx → {@link vpsFailure}, a body `schema` refuses → `unavailable`. */
export async function parseAnswer<S extends z.ZodType>(
  res: Response,
  schema: S,
  style: FailureStyle,
): Promise<z.infer<S>> {
  const json: unknown = await res.json().catch(() => undefined);
  if (!res.ok) throw vpsFailure(res, json, style);
  const r = schema.safeParse(json);
  if (!r.success) throw new DionysusError("unavailable", `unexpected answer from the VPS (${res.url})`);
  return r.data;
}

/** One Server-Sent Event; `id` is the event's own `id:` line, if it had one. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Yields the events of an SSE body until it ends. Events without data are skipped. On exit the
 * reader is cancelled (closing the connection when the caller stops early), or with
 * `cancel: false` only released.
 */
export async function* readSse(
  body: ReadableStream,
  opts: { cancel?: boolean } = {},
): AsyncGenerator<SseEvent> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data = "";
  let id: string | undefined;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (line === "") {
          if (data) yield { event, data, id } satisfies SseEvent;
          event = "message";
          data = "";
          id = undefined;
        } else if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).trimStart();
        else if (line.startsWith("id:")) id = line.slice(3).trim();
      }
    }
  } finally {
    if (opts.cancel === false) reader.releaseLock();
    else await reader.cancel().catch(() => {});
  }
}
