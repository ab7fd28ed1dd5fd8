/**
 * The one transport of the edge's HTTP clients of the VPS (the sync client and the VPS query
 * client, "heavy" in docs/architecture.md): the ky instance, network failures → `unavailable`,
 * the bearer token with one refresh after a 401, non-2xx answers → DionysusError, schema-checked
 * JSON bodies, and the Server-Sent Events and NDJSON readers.
 */
import ky, { type KyInstance } from "ky";
import type { z } from "zod";
import { parseRetryAfter } from "../core/backoff.ts";
import { DionysusError, type ErrorCode, fromProblem } from "../core/errors.ts";

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

/** Where a client gets its bearer token (the sync engine's session: see sync/session.ts). */
export interface TokenSource {
  /** The current access token, refreshed first when it is about to expire. */
  accessToken(): Promise<string>;
  /** Forces a refresh after a 401; returns false when the refresh itself was refused. */
  refresh(): Promise<boolean>;
}

/** How a client words failures; the two clients keep their own wording. */
export interface FailureStyle {
  /** Start of the message before the status, e.g. `VPS answered`. */
  prefix: string;
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

/**
 * Sends an authenticated request: `call` gets the bearer header. On a 401 the token is
 * refreshed once and the request sent again; a refused refresh is `unauthorized`.
 */
export async function sendAuthed(
  tokens: TokenSource,
  call: (headers: Record<string, string>) => Promise<Response>,
  send: (call: () => Promise<Response>) => Promise<Response>,
): Promise<Response> {
  const attempt = async () => call({ authorization: `Bearer ${await tokens.accessToken()}` });
  const res = await send(attempt);
  if (res.status !== 401) return res;
  await res.body?.cancel().catch(() => {});
  if (!(await tokens.refresh()))
    throw new DionysusError(
      "unauthorized",
      "the VPS refused this device's credentials: re-authentication needed, run dionysus login",
    );
  return send(attempt);
}

/**
 * The DionysusError for a non-2xx answer whose body (if JSON) is `json`: the problem's code
 * ({@link fromProblem}), except that to the edge a 5xx is always `unavailable` (the VPS is a
 * dependency: back off and retry), a 401 `unauthorized` and a 429 `rate_limited`; a Retry-After
 * becomes `details.retry_after_ms`.
 */
export function vpsFailure(res: Response, json: unknown, style: FailureStyle): DionysusError {
  const decoded = fromProblem(res.status, json, res.statusText);
  const retryAfter = parseRetryAfter(res.headers.get("retry-after"));
  const details = {
    http_status: res.status,
    ...(retryAfter !== undefined ? { retry_after_ms: retryAfter } : {}),
  };
  const code: ErrorCode =
    res.status >= 500
      ? "unavailable"
      : res.status === 401
        ? "unauthorized"
        : res.status === 429
          ? "rate_limited"
          : decoded.code;
  return new DionysusError(code, `${style.prefix} ${res.status}: ${decoded.message}`, { details });
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

/**
 * What both VPS clients build on: the ky instance on the VPS's base URL, and `send`, `authed`,
 * `parse`, `failure` worded with the client's {@link FailureStyle}.
 */
export abstract class VpsTransport {
  protected readonly http: KyInstance;

  protected constructor(
    private readonly where: VpsHttpOptions,
    private readonly style: FailureStyle,
  ) {
    this.http = createVpsHttp(where);
  }

  get baseUrl(): string {
    return this.where.baseUrl;
  }

  /** Runs a request; network failures and timeouts become `unavailable`. */
  protected send(call: () => Promise<Response>): Promise<Response> {
    return sendOrUnavailable(call, this.where.baseUrl, this.style);
  }

  /** Runs a request with `tokens`' bearer token (see {@link sendAuthed}). */
  protected authed(
    tokens: TokenSource,
    call: (headers: Record<string, string>) => Promise<Response>,
  ): Promise<Response> {
    return sendAuthed(tokens, call, (c) => this.send(c));
  }

  protected parse<S extends z.ZodType>(res: Response, schema: S): Promise<z.infer<S>> {
    return parseAnswer(res, schema, this.style);
  }

  protected failure(res: Response, json: unknown): DionysusError {
    return vpsFailure(res, json, this.style);
  }
}

/** One Server-Sent Event; `id` is the event's own `id:` line, if it had one. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

/**
 * Yields the lines of a text body (without their `\n`) until it ends; a failed read throws. On
 * exit the reader is cancelled (closing the connection when the caller stops early), or with
 * `cancel: false` only released.
 */
async function* readLines(
  body: ReadableStream,
  opts: { cancel?: boolean; idleMs?: number } = {},
): AsyncGenerator<string> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const read = opts.idleMs === undefined ? () => reader.read() : () => readWithin(reader, opts.idleMs!);
  try {
    for (;;) {
      const { value, done } = await read();
      if (done) return;
      buffer += value;
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        yield buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
      }
    }
  } finally {
    if (opts.cancel === false) reader.releaseLock();
    else await reader.cancel().catch(() => {});
  }
}

/**
 * One read, or a DionysusError("unavailable") when nothing at all arrives within `idleMs` (the
 * stream is cancelled then: a link that died without a reset never ends a read by itself).
 */
async function readWithin<R extends { read(): Promise<unknown>; cancel(): Promise<void> }>(
  reader: R,
  idleMs: number,
): Promise<Awaited<ReturnType<R["read"]>>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const silent = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Rejected first: cancelling ends the pending read at once (done), which must not win.
      reject(
        new DionysusError(
          "unavailable",
          `nothing from the VPS for ${Math.round(idleMs / 1000)} s, not even a heartbeat: the link is taken as lost`,
        ),
      );
      reader.cancel().catch(() => {});
    }, idleMs);
  });
  try {
    return (await Promise.race([reader.read(), silent])) as Awaited<ReturnType<R["read"]>>;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Yields the events of an SSE body until it ends. Events without data are skipped. On exit the
 * reader is cancelled (closing the connection when the caller stops early), or with
 * `cancel: false` only released. With `idleMs`, a body silent for that long (comments such as
 * heartbeats count as data here) is a DionysusError("unavailable").
 */
export async function* readSse(
  body: ReadableStream,
  /** `idleMs`: throw (and cancel) when the body is silent that long (heartbeats count). */
  opts: { cancel?: boolean; idleMs?: number } = {},
): AsyncGenerator<SseEvent> {
  let event = "message";
  let data = "";
  let id: string | undefined;
  for await (const raw of readLines(body, opts)) {
    const line = raw.replace(/\r$/, "");
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

/**
 * Yields the non-blank lines of an NDJSON body, trimmed, until it ends. A failed read throws.
 * On exit the reader is cancelled (closing the connection when the caller stops early).
 */
export async function* readNdjsonLines(body: ReadableStream): AsyncGenerator<string> {
  for await (const raw of readLines(body)) {
    const line = raw.trim();
    if (line) yield line;
  }
}

/** `JSON.parse`, or undefined for text that is not JSON. */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
