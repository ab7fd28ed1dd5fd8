/**
 * HTTP client of the VPS query endpoints ("heavy" queries: see docs/architecture.md): `POST /v1/search`, `POST /v1/graph/query`,
 * `POST /v1/consolidate`, `GET /v1/jobs/:id`, `POST /v1/ask` (NDJSON stream) and the `job`
 * events of `GET /v1/events`. Answers are parsed with the core schemas. Failures become
 * DionysusErrors: `unavailable` for a network error, a timeout or a 5xx (the message says which),
 * `unauthorized` when the VPS refuses the credentials even after a token refresh, and the VPS's
 * own code otherwise (`invalid_input`, `not_found`, `rate_limited`, ...).
 */
import { z } from "zod";
import {
  AskEvent,
  type AskRequest,
  ConsolidateResponse,
  type GraphQueryRequest,
  GraphQueryResponse,
  Job,
  type SearchAsk,
  SearchResponse,
} from "../../core/protocol/heavy.ts";
import {
  type FailureStyle,
  readNdjsonLines,
  readSse,
  safeJson,
  type TokenSource,
  VpsTransport,
} from "../vps-http.ts";

const STYLE: FailureStyle = { prefix: "the VPS answered", plainTimeout: true };

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

export class HeavyClient extends VpsTransport {
  constructor(private readonly opts: HeavyClientOptions) {
    super(opts, STYLE);
  }

  async search(req: SearchAsk): Promise<SearchResponse> {
    return this.parse(
      await this.withToken((h) => this.http.post("v1/search", { headers: h, json: req })),
      SearchResponse,
    );
  }

  async graph(req: GraphQueryRequest): Promise<GraphQueryResponse> {
    return this.parse(
      await this.withToken((h) => this.http.post("v1/graph/query", { headers: h, json: req })),
      GraphQueryResponse,
    );
  }

  async consolidate(): Promise<ConsolidateResponse> {
    return this.parse(
      await this.withToken((h) => this.http.post("v1/consolidate", { headers: h, json: {} })),
      ConsolidateResponse,
    );
  }

  async job(id: string): Promise<Job> {
    const res = await this.withToken((h) =>
      this.http.get(`v1/jobs/${encodeURIComponent(id)}`, { headers: h }),
    );
    const body = await this.parse(res, JobEnvelope);
    return body.job;
  }

  /** Opens the answer stream of `POST /v1/ask`; errors before it starts (no LLM: 503) throw. */
  async ask(req: AskRequest, signal?: AbortSignal): Promise<AsyncGenerator<AskEvent>> {
    const res = await this.withToken((h) =>
      // Retrieval on the VPS embeds the question first, which may wait on a model.
      this.http.post("v1/ask", {
        headers: h,
        json: req,
        timeout: ASK_START_TIMEOUT_MS,
        ...(signal ? { signal } : {}),
      }),
    );
    if (!res.ok || !res.body) throw this.failure(res, await res.json().catch(() => undefined));
    return readAskEvents(res.body, this.opts.baseUrl);
  }

  /** The `job` events of the user's event stream (`GET /v1/events`), until `signal` aborts. */
  async *jobEvents(signal: AbortSignal): AsyncGenerator<Job> {
    const res = await this.withToken((h) =>
      this.http.get("v1/events", { headers: { ...h, accept: "text/event-stream" }, signal, timeout: false }),
    );
    if (!res.ok || !res.body) throw this.failure(res, await res.json().catch(() => undefined));
    // readSse cancels the reader on exit, which closes the connection when the caller stops early.
    for await (const { event, data } of readSse(res.body)) {
      if (event !== "job") continue;
      const parsed = Job.safeParse(safeJson(data));
      if (parsed.success) yield parsed.data;
    }
  }

  private withToken(call: (headers: Record<string, string>) => Promise<Response>): Promise<Response> {
    return this.authed(this.opts.tokens, call);
  }
}

/** The ask events of an NDJSON answer; a stream that breaks off or ends early ends with an `error` event. */
async function* readAskEvents(body: ReadableStream, where: string): AsyncGenerator<AskEvent> {
  let ended = false;
  try {
    for await (const line of readNdjsonLines(body)) {
      const parsed = AskEvent.safeParse(safeJson(line));
      if (!parsed.success) continue;
      yield parsed.data;
      if (parsed.data.type === "done" || parsed.data.type === "error") ended = true;
    }
  } catch (err) {
    yield {
      type: "error",
      code: "unavailable",
      message: `the answer from the VPS at ${where} broke off: ${err instanceof Error ? err.message : String(err)}`,
    };
    return;
  }
  if (!ended)
    yield {
      type: "error",
      code: "unavailable",
      message: `the answer from the VPS at ${where} ended early`,
    };
}
