/**
 * The `ChatModel` port: an LLM that answers a conversation with streamed text. Adapter:
 * `src/vps/search/ollama/` (Ollama's `/api/chat`). Without one configured, the VPS answers LLM
 * requests with 503.
 *
 * Invariants: `chat` yields the answer's text in order, chunk by chunk, and ends when the model is
 * done; aborting `signal` stops the request; a model that is down or answers an error fails with
 * `DionysusError("unavailable")`.
 */

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

export interface ChatOptions {
  signal?: AbortSignal;
  /** Ask the model to answer with one JSON value (Ollama's `format: "json"`). */
  json?: boolean;
}

export interface ChatModel {
  /** Stable name of the model, for example `ollama/llama3.2`. */
  readonly id: string;
  /** Streams the assistant's answer to `messages`. */
  chat(messages: ChatMessage[], options?: ChatOptions): AsyncIterable<string>;
}
