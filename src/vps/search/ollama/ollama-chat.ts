/**
 * Chat from Ollama: `POST {url}/api/chat` with `{ model, messages, stream: true }`, answered by
 * NDJSON lines `{ message: { role, content }, done }` (the last one has `done: true`), or by a
 * line `{ error }` when the model fails midway (Ollama's documented shapes).
 */
import { z } from "zod";
import { isDionysusError } from "../../../core/errors.ts";
import type { ChatModel } from "../../../core/ports/chat-model.ts";
import { describeUrl, type OllamaOptions, ollamaEndpoint, postOllama, unavailable } from "./ollama-http.ts";

const ChatChunk = z.object({
  message: z.object({ role: z.string().optional(), content: z.string().optional() }).optional(),
  done: z.boolean().optional(),
  error: z.string().optional(),
});

/** Creates a `ChatModel` backed by Ollama's `/api/chat`. `timeoutMs` (120 s by default) bounds
 * the wait for the answer to start and each wait between two chunks: a model that is loading or
 * generating keeps the stream alive, a stuck one does not hold the request forever. */
export function createOllamaChat(options: OllamaOptions): ChatModel {
  const endpoint = ollamaEndpoint(options.url, "api/chat");
  const timeoutMs = options.timeoutMs ?? 120_000;

  async function* chat(
    messages: Parameters<ChatModel["chat"]>[0],
    opts: Parameters<ChatModel["chat"]>[1] = {},
  ): AsyncGenerator<string> {
    const answer = await postOllama(
      endpoint,
      { model: options.model, messages, stream: true, ...(opts.json ? { format: "json" } : {}) },
      timeoutMs,
      opts.signal,
    );
    // From here on, the per-chunk timer below bounds each wait instead.
    answer.settle();
    const res = answer.res;
    if (!res.body) throw unavailable(`Ollama answered without a body at ${describeUrl(endpoint)}`);
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = false;

    const readChunk = async (): ReturnType<typeof reader.read> => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () =>
            reject(unavailable(`Ollama stopped answering for ${timeoutMs} ms (${describeUrl(endpoint)})`)),
          timeoutMs,
        );
      });
      try {
        return await Promise.race([reader.read(), timedOut]);
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? err;
        if (isDionysusError(err)) throw err;
        throw unavailable(`the connection to Ollama broke (${describeUrl(endpoint)})`, err);
      } finally {
        clearTimeout(timer);
      }
    };

    const handleLine = (line: string): string | undefined => {
      if (line.trim() === "") return undefined;
      let parsed: z.infer<typeof ChatChunk>;
      try {
        parsed = ChatChunk.parse(JSON.parse(line));
      } catch (err) {
        throw unavailable(`Ollama sent a line that is not a chat chunk: ${line.slice(0, 120)}`, err);
      }
      if (parsed.error) throw unavailable(`Ollama failed while answering: ${parsed.error}`);
      if (parsed.done) done = true;
      return parsed.message?.content || undefined;
    };

    try {
      while (!done) {
        const { value, done: ended } = await readChunk();
        if (ended) break;
        buffer += decoder.decode(value, { stream: true });
        let nl = buffer.indexOf("\n");
        while (nl >= 0) {
          const text = handleLine(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          if (text) yield text;
          if (done) break;
          nl = buffer.indexOf("\n");
        }
      }
      if (!done) {
        const text = handleLine(buffer + decoder.decode());
        buffer = "";
        if (text) yield text;
      }
      if (!done) throw unavailable(`Ollama's answer ended before it was done (${describeUrl(endpoint)})`);
    } finally {
      await reader.cancel().catch(() => {});
    }
  }

  return { id: `ollama/${options.model}`, chat };
}
