/**
 * HTTP client of the VPS's heavy endpoints (issue 5): `POST /v1/search`, `POST /v1/graph/query`,
 * `POST /v1/consolidate`, `GET /v1/jobs/:id`, `POST /v1/ask` (NDJSON stream) and the `job`
 * events of `GET /v1/events`. Answers are parsed with the core schemas. Failures become
 * DionysusErrors: `unavailable` for a network error, a timeout or a 5xx (the message says which),
 * `unauthorized` when the VPS refuses the credentials even after a token refresh, and the VPS's
 * own code otherwise (`invalid_input`, `not_found`, `rate_limited`, ...).
 */
import ky, { type KyInstance } from "ky";
import { z } from "zod";
import { parseRetryAfter } from "../../core/backoff.ts";
import { DionysusError, type ErrorCode, ErrorCodes } from "../../core/errors.ts";
import {
  AskEvent,
  type AskRequest,
  ConsolidateResponse,
  type GraphQueryRequest,
  GraphQueryResponse,
  Job,
  type SearchRequest,
  SearchResponse,
} from "../../core/protocol/heavy.ts";
import type { TokenSource } from "../sync/vps-client.ts";

export interface HeavyClientOptions {
  baseUrl: string;
  tokens: TokenSource;
  /** Wait for an answer (ms), 15 s by default; for `ask`, the wait for the stream to start. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** How long `ask` waits for its answer to start streaming. */
const ASK_START_TIMEOUT_MS = 120_000;

/** `GET /v1/jobs/:id` answers `{ job }`. */
const JobEnvelope = z.object({ job: Job });

export class HeavyClient {
  private readonly http: KyInstance;

  constructor(private readonly opts: HeavyClientOptions) {
    this.http = ky.create({
      prefixUrl: opts.baseUrl.replace(/\/+$/, ""),
      timeout: opts.timeoutMs ?? 15_000,
      retry: 0,
      throwHttpErrors: false,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
  }

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  async search(req: SearchRequest): Promise<SearchResponse> {
    return this.parse(
      await this.authed((h) => this.http.post("v1/search", { headers: h, json: req })),
      SearchResponse,
    );
  }

  async graph(req: GraphQueryRequest): Promise<GraphQueryResponse> {
    return this.parse(
      await this.authed((h) => this.http.post("v1/graph/query", { headers: h, json: req })),
      GraphQueryResponse,
    );
  }

  async consolidate(): Promise<ConsolidateResponse> {
    return this.parse(
      await this.authed((h) => this.http.post("v1/consolidate", { headers: h, json: {} })),
      ConsolidateResponse,
    );
  }

  async job(id: string): Promise<Job> {
    const res = await this.authed((h) => this.http.get(`v1/jobs/${encodeURIComponent(id)}`, { headers: h }));
    const body = await this.parse(res, JobEnvelope);
    return body.job;
  }

  /** Opens the answer stream of `POST /v1/ask`; errors before it starts (no LLM: 503) throw. */
  async ask(req: AskRequest, signal?: AbortSignal): Promise<AsyncGenerator<AskEvent>> {
    const res = await this.authed((h) =>
      // Retrieval on the VPS embeds the question first, which may wait on a model.
      this.http.post("v1/ask", {
        headers: h,
        json: req,
        timeout: ASK_START_TIMEOUT_MS,
        ...(signal ? { signal } : {}),
      }),
    );
    if (!res.ok || !res.body) throw this.failure(res, await res.json().catch(() => undefined));
    return readNdjson(res.body, this.opts.baseUrl);
  }

  /** The `job` events of the user's event stream (`GET /v1/events`), until `signal` aborts. */
  async *jobEvents(signal: AbortSignal): AsyncGenerator<Job> {
    const res = await this.authed((h) =>
      this.http.get("v1/events", { headers: { ...h, accept: "text/event-stream" }, signal, timeout: false }),
    );
    if (!res.ok || !res.body) throw this.failure(res, await res.json().catch(() => undefined));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = "message";
    let data = "";
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
            if (event === "job" && data) {
              const parsed = Job.safeParse(safeJson(data));
              if (parsed.success) yield parsed.data;
            }
            event = "message";
            data = "";
          } else if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += (data ? "\n" : "") + line.slice(5).trimStart();
        }
      }
    } finally {
      // Closes the connection too when the caller stops early.
      await reader.cancel().catch(() => {});
    }
  }

  // ---- plumbing ----

  private async authed(call: (headers: Record<string, string>) => Promise<Response>): Promise<Response> {
    const attempt = async () => call({ authorization: `Bearer ${await this.opts.tokens.accessToken()}` });
    let res = await this.send(attempt);
    if (res.status === 401) {
      await res.body?.cancel().catch(() => {});
      if (!(await this.opts.tokens.refresh()))
        throw new DionysusError(
          "unauthorized",
          "the VPS refused this device's credentials: run dionysus login",
        );
      res = await this.send(attempt);
    }
    return res;
  }

  private async send(call: () => Promise<Response>): Promise<Response> {
    try {
      return await call();
    } catch (cause) {
      if (cause instanceof DionysusError) throw cause;
      if (cause instanceof Error && cause.name === "AbortError") throw cause;
      const why =
        cause instanceof Error && cause.name === "TimeoutError"
          ? "no answer in time"
          : cause instanceof Error
            ? cause.message
            : String(cause);
      throw new DionysusError("unavailable", `VPS unreachable at ${this.opts.baseUrl}: ${why}`, { cause });
    }
  }

  private async parse<S extends z.ZodType>(res: Response, schema: S): Promise<z.infer<S>> {
    const json: unknown = await res.json().catch(() => undefined);
    if (!res.ok) throw this.failure(res, json);
    const r = schema.safeParse(json);
    if (!r.success) throw new DionysusError("unavailable", `unexpected answer from the VPS (${res.url})`);
    return r.data;
  }

  private failure(res: Response, json: unknown): DionysusError {
    const problem = (json ?? {}) as { detail?: string; code?: string };
    const detail = problem.detail ?? res.statusText;
    const retryAfter = parseRetryAfter(res.headers.get("retry-after"));
    const details = {
      http_status: res.status,
      ...(retryAfter !== undefined ? { retry_after_ms: retryAfter } : {}),
    };
    let code: ErrorCode =
      problem.code && problem.code in ErrorCodes ? (problem.code as ErrorCode) : "invalid_input";
    if (res.status >= 500) code = "unavailable";
    else if (res.status === 401) code = "unauthorized";
    else if (res.status === 429) code = "rate_limited";
    return new DionysusError(code, `the VPS answered ${res.status}: ${detail}`, { details });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Reads an NDJSON stream of ask events; a broken stream ends with an `error` event. */
async function* readNdjson(body: ReadableStream, where: string): AsyncGenerator<AskEvent> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let ended = false;
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        yield {
          type: "error",
          code: "unavailable",
          message: `the answer from the VPS at ${where} broke off: ${err instanceof Error ? err.message : String(err)}`,
        };
        return;
      }
      if (chunk.done) break;
      buffer += chunk.value;
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        const line = buffer.slice(0, nl).trim();
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
        if (!line) continue;
        const parsed = AskEvent.safeParse(safeJson(line));
        if (!parsed.success) continue;
        yield parsed.data;
        if (parsed.data.type === "done" || parsed.data.type === "error") ended = true;
      }
    }
    if (!ended)
      yield {
        type: "error",
        code: "unavailable",
        message: `the answer from the VPS at ${where} ended early`,
      };
  } finally {
    await reader.cancel().catch(() => {});
  }
}
