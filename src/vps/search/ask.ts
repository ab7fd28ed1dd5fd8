/**
 * `POST /v1/ask`: the memories most relevant to the question (hybrid search) are given to
 * the chat model, whose answer streams back as {@link AskEvent}s: `sources`, then `delta`s, then
 * `done`, or `error` when the model fails midway. Without a chat model the VPS answers 503.
 */
import { DionysusError } from "../../core/errors.ts";
import type { ChatModel } from "../../core/ports/chat-model.ts";
import type { AskEvent, AskRequest, SearchHit } from "../../core/protocol/heavy.ts";
import { buildAskMessages } from "./prompts.ts";
import type { SearchService } from "./search-service.ts";

export const NO_LLM_MESSAGE =
  "no LLM is configured on this VPS: set ollama_url (DIONYSUS_VPS_OLLAMA_URL) to a running Ollama to ask questions";

export type AskService = ReturnType<typeof createAskService>;

export function createAskService(search: SearchService, chat: ChatModel | undefined) {
  return {
    available: chat !== undefined,

    /** Retrieval first (its failures are plain errors), then the answer as a stream of events. */
    async prepare(userId: string, req: AskRequest): Promise<AsyncGenerator<AskEvent>> {
      if (!chat) throw new DionysusError("unavailable", NO_LLM_MESSAGE);
      const hits = await search.retrieve(userId, req.question, req.limit);
      return answer(chat, req.question, hits);
    },
  };
}

async function* answer(chat: ChatModel, question: string, hits: SearchHit[]): AsyncGenerator<AskEvent> {
  yield { type: "sources", memories: hits.map((h) => ({ id: h.memory.id, score: h.score })) };
  const messages = buildAskMessages(
    question,
    hits.map((h) => ({ id: h.memory.id, content: h.memory.content, created_at: h.memory.created_at })),
  );
  const abort = new AbortController();
  try {
    for await (const text of chat.chat(messages, { signal: abort.signal })) {
      if (text) yield { type: "delta", text };
    }
    yield { type: "done" };
  } catch (err) {
    const code = err instanceof DionysusError ? err.code : "internal";
    yield { type: "error", code, message: err instanceof Error ? err.message : String(err) };
  } finally {
    // The consumer stopped early (the client went away): stop the model too.
    abort.abort();
  }
}
