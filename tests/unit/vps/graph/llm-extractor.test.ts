import { describe, expect, test } from "bun:test";
import { DionysusError } from "../../../../src/core/errors.ts";
import type { ChatMessage, ChatModel, ChatOptions } from "../../../../src/core/ports/chat-model.ts";
import { createCompromiseExtractor } from "../../../../src/vps/graph/extract/compromise-extractor.ts";
import {
  cleanLlmAnswer,
  createLlmEntityExtractor,
  firstJsonObject,
} from "../../../../src/vps/graph/extract/llm-extractor.ts";

/** A fake chat model (no LLM can run here) that streams a fixed answer in small pieces. */
function fakeChat(
  answer: string | Error,
): ChatModel & { calls: { messages: ChatMessage[]; options?: ChatOptions }[] } {
  const calls: { messages: ChatMessage[]; options?: ChatOptions }[] = [];
  return {
    id: "fake/model",
    calls,
    async *chat(messages, options) {
      calls.push({ messages, options });
      if (answer instanceof Error) throw answer;
      for (let i = 0; i < answer.length; i += 7) yield answer.slice(i, i + 7);
    },
  };
}

describe("LLM entity extractor (fake chat model)", () => {
  test("asks for JSON with the note and returns the cleaned entities and relations", async () => {
    const chat = fakeChat(
      JSON.stringify({
        entities: [
          { name: "Ana Lima", type: "person" },
          { name: "Lisbon", type: "place" },
          { name: "ACME", type: "organisation" },
          { name: "gardening", type: "hobby" },
          { name: "ana lima", type: "topic" },
        ],
        relations: [
          { from: "Ana Lima", to: "Lisbon", type: "lives in" },
          { from: "Ana Lima", to: "Nobody", type: "knows" },
          { from: "Lisbon", to: "lisbon", type: "is" },
          { from: "ana lima", to: "ACME" },
        ],
      }),
    );
    const x = createLlmEntityExtractor({ chat });
    expect(x.id).toBe("llm/fake/model");
    const out = await x.extract("Ana Lima lives in Lisbon and works at ACME; loves gardening.");
    expect(out.entities).toEqual([
      { name: "Ana Lima", type: "person" },
      { name: "Lisbon", type: "place" },
      { name: "ACME", type: "organization" },
      { name: "gardening", type: "topic" },
    ]);
    expect(out.relations).toEqual([
      { from: "Ana Lima", to: "Lisbon", type: "lives_in" },
      { from: "Ana Lima", to: "ACME", type: "related_to" },
    ]);
    expect(chat.calls[0]!.options).toEqual({ json: true });
    expect(chat.calls[0]!.messages.map((m) => m.role)).toEqual(["system", "user"]);
    expect(chat.calls[0]!.messages[1]!.content).toContain("Ana Lima lives in Lisbon");
  });

  test("finds the JSON object inside prose or code fences", () => {
    expect(firstJsonObject('Sure!\n```json\n{"entities":[]}\n```')).toEqual({ entities: [] });
    expect(() => firstJsonObject("no json here")).toThrow();
    expect(cleanLlmAnswer({})).toEqual({ entities: [], relations: [] });
  });

  test("falls back to the local extractor when the model fails or answers nonsense", async () => {
    const reasons: string[] = [];
    const fallback = createCompromiseExtractor();
    const text = "Had coffee with Ana Lima in Lisbon.";
    const expected = await fallback.extract(text);
    for (const chat of [
      fakeChat(new DionysusError("unavailable", "Ollama is not reachable")),
      fakeChat("I cannot."),
    ]) {
      const x = createLlmEntityExtractor({ chat, fallback, onFallback: (r) => reasons.push(r) });
      expect(await x.extract(text)).toEqual(expected);
    }
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toContain("not reachable");
  });

  test("without a fallback the failure is thrown; empty text does not call the model", async () => {
    const chat = fakeChat(new DionysusError("unavailable", "down"));
    const x = createLlmEntityExtractor({ chat });
    await expect(x.extract("Ana")).rejects.toThrow("down");
    expect(await x.extract("   ")).toEqual({ entities: [], relations: [] });
    expect(chat.calls).toHaveLength(1);
  });
});
