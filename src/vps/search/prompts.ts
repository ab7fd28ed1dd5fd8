/**
 * The messages sent to the chat model for `ask` and for consolidation summaries. The memories
 * are given as numbered, dated excerpts; the model is told to answer only from them.
 */
import type { ChatMessage } from "../../core/ports/chat-model.ts";

export interface PromptMemory {
  id: string;
  content: string;
  created_at: string;
}

/** Most characters of one memory put in a prompt. */
export const MAX_MEMORY_CHARS = 2000;

function excerpt(m: PromptMemory, i: number): string {
  const text = m.content.length > MAX_MEMORY_CHARS ? `${m.content.slice(0, MAX_MEMORY_CHARS)}…` : m.content;
  return `[${i + 1}] (${m.created_at.slice(0, 10)}) ${text}`;
}

export const ASK_SYSTEM_PROMPT =
  "You are the user's personal memory assistant. Answer the question using only the memories " +
  "below, which are the user's own notes. Refer to them by their numbers like [2]. If they do not " +
  "contain the answer, say so plainly instead of guessing.";

/** Messages for `POST /v1/ask`: the memories (best first) and the question. */
export function buildAskMessages(question: string, memories: readonly PromptMemory[]): ChatMessage[] {
  const context =
    memories.length > 0 ? memories.map(excerpt).join("\n") : "(no memories matched the question)";
  return [
    { role: "system", content: ASK_SYSTEM_PROMPT },
    { role: "user", content: `Memories:\n${context}\n\nQuestion: ${question}` },
  ];
}

export const SUMMARY_SYSTEM_PROMPT =
  "Summarize the user's memories below in at most five sentences, in the user's own voice " +
  "(first person), keeping names, places and dates. Do not add anything that is not in them.";

/** Messages for a consolidation summary of `memories`. */
export function buildSummaryMessages(memories: readonly PromptMemory[]): ChatMessage[] {
  return [
    { role: "system", content: SUMMARY_SYSTEM_PROMPT },
    { role: "user", content: memories.map(excerpt).join("\n") },
  ];
}
