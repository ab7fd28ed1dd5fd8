/**
 * One POST to Ollama with a timeout, turning every failure into `DionysusError("unavailable")`
 * with a message that says what went wrong (not reachable, timed out, model missing, ...).
 */
import { DionysusError } from "../../../core/errors.ts";

export interface OllamaOptions {
  /** Base URL of Ollama, for example `http://127.0.0.1:11434`. */
  url: string;
  /** Model name, for example `nomic-embed-text` or `llama3.2`. */
  model: string;
  /** Milliseconds to wait for an answer (for chat: for each streamed chunk). */
  timeoutMs?: number;
}

export function ollamaEndpoint(base: string, path: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw new DionysusError("config_invalid", `Ollama URL is not a valid URL: ${base}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new DionysusError("config_invalid", `Ollama URL must be http or https: ${base}`);
  }
  return new URL(path, url.href.endsWith("/") ? url.href : `${url.href}/`).href;
}

/** Where Ollama is, for messages: the origin and path, never credentials. */
export function describeUrl(endpoint: string): string {
  const u = new URL(endpoint);
  return `${u.origin}${u.pathname}`;
}

/** Reads Ollama's `{ "error": "..." }` body when there is one. */
async function errorText(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const body = JSON.parse(text) as { error?: unknown };
    if (typeof body.error === "string") return body.error;
  } catch {
    // not JSON: use the text itself
  }
  return text.slice(0, 200) || res.statusText;
}

export function unavailable(
  message: string,
  cause?: unknown,
  details?: Record<string, unknown>,
): DionysusError {
  return new DionysusError("unavailable", message, { cause, ...(details ? { details } : {}) });
}

/** An answer with a 2xx status whose headers arrived; `settle()` stops its timeout. */
export interface OllamaResponse {
  res: Response;
  /** Stops the timeout (call when the body is read, or before streaming it under another timer). */
  settle(): void;
}

/**
 * POSTs JSON and returns the response once its headers arrived with a 2xx status. `signal`
 * aborts it; the timeout keeps running (headers and body) until `settle()` is called.
 */
export async function postOllama(
  endpoint: string,
  body: unknown,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<OllamaResponse> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const settle = () => clearTimeout(timer);
  const combined = signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal;
  let res: Response;
  try {
    res = await fetch(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, application/x-ndjson" },
      body: JSON.stringify(body),
      signal: combined,
    });
  } catch (err) {
    settle();
    if (signal?.aborted) throw signal.reason ?? err;
    if (timeout.signal.aborted) {
      throw unavailable(`Ollama did not answer within ${timeoutMs} ms (${describeUrl(endpoint)})`, err);
    }
    throw unavailable(`Ollama is not reachable at ${describeUrl(endpoint)}`, err);
  }
  if (!res.ok) {
    const reason = await errorText(res);
    settle();
    throw unavailable(`Ollama answered ${res.status} at ${describeUrl(endpoint)}: ${reason}`, undefined, {
      upstream_status: res.status,
    });
  }
  return { res, settle };
}

/** Reads a JSON body under the request's timeout. */
export async function readJson(
  answer: OllamaResponse,
  endpoint: string,
  timeoutMs: number,
): Promise<unknown> {
  try {
    return await answer.res.json();
  } catch (err) {
    if (err instanceof Error && /timed out|abort/i.test(`${err.name} ${err.message}`)) {
      throw unavailable(`Ollama did not answer within ${timeoutMs} ms (${describeUrl(endpoint)})`, err);
    }
    throw unavailable(`Ollama answered something that is not JSON at ${describeUrl(endpoint)}`, err);
  } finally {
    answer.settle();
  }
}
