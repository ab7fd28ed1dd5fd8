/**
 * Entity extraction by an LLM (used when one is configured): the model is asked for one JSON
 * object `{entities: [{name, type}], relations: [{from, to, type}]}`; its answer is checked and
 * cleaned (unknown types become `topic`, relations must join two distinct returned entities,
 * duplicates by normalised name are merged). When the model is down or answers something
 * unusable, the `fallback` extractor (the local one) answers instead, so extraction never stops
 * because of the LLM.
 */
import { z } from "zod";
import type { ChatModel } from "../../../core/ports/chat-model.ts";
import type { EntityExtractor, EntityType, Extraction } from "../../../core/ports/entity-extractor.ts";
import { normalizeEntityName } from "../normalize.ts";
import { MAX_ENTITIES } from "./compromise-extractor.ts";

export interface LlmExtractorOptions {
  chat: ChatModel;
  /** Answers when the LLM fails; without one, the failure is thrown. */
  fallback?: EntityExtractor;
  /** Longest text sent to the model, in characters (the rest is cut); 8,000 by default. */
  maxChars?: number;
  /** Called with the reason whenever the fallback answered (for logs). */
  onFallback?: (reason: string) => void;
}

export const EXTRACTION_PROMPT = `You extract a knowledge graph from a personal note.
Answer with one JSON object and nothing else:
{"entities":[{"name":"...","type":"person|place|organization|topic"}],"relations":[{"from":"...","to":"...","type":"snake_case_verb"}]}
Rules: names exactly as written in the note; topics are salient things or ideas (not dates, numbers or pronouns);
each relation joins two entities of your list; at most ${MAX_ENTITIES} entities. If there is nothing, answer {"entities":[],"relations":[]}.`;

const Answer = z.object({
  entities: z.array(z.object({ name: z.string(), type: z.string().optional() }).passthrough()).default([]),
  relations: z
    .array(z.object({ from: z.string(), to: z.string(), type: z.string().optional() }).passthrough())
    .default([]),
});

const TYPES = new Set<EntityType>(["person", "place", "organization", "topic"]);

/** The first JSON object in a model's answer (models sometimes wrap it in prose or fences). */
export function firstJsonObject(text: string): unknown {
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start < 0 || end < start) throw new Error("no JSON object in the answer");
  return JSON.parse(text.slice(start, end + 1));
}

/** Checks and cleans a model's answer into an `Extraction`. */
export function cleanLlmAnswer(raw: unknown): Extraction {
  const answer = Answer.parse(raw);
  const byNorm = new Map<string, { name: string; type: EntityType }>();
  for (const e of answer.entities) {
    const name = e.name.trim().slice(0, 200);
    const norm = normalizeEntityName(name);
    if (!norm || byNorm.size >= MAX_ENTITIES) continue;
    const t = (e.type ?? "topic").toLowerCase().replace("organisation", "organization");
    const type: EntityType = TYPES.has(t as EntityType) ? (t as EntityType) : "topic";
    const known = byNorm.get(norm);
    if (!known) byNorm.set(norm, { name, type });
    else if (known.type === "topic" && type !== "topic") known.type = type;
  }
  const relations = new Map<string, { from: string; to: string; type: string }>();
  for (const r of answer.relations) {
    const from = byNorm.get(normalizeEntityName(r.from));
    const to = byNorm.get(normalizeEntityName(r.to));
    if (!from || !to || from === to) continue;
    const type =
      (r.type ?? "related_to")
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "_")
        .replace(/^_+|_+$/g, "") || "related_to";
    relations.set(`${from.name}\u0000${to.name}\u0000${type}`, { from: from.name, to: to.name, type });
  }
  return { entities: [...byNorm.values()], relations: [...relations.values()] };
}

/** Creates the LLM extractor (`llm/<model id>`). */
export function createLlmEntityExtractor(options: LlmExtractorOptions): EntityExtractor {
  const maxChars = options.maxChars ?? 8000;
  return {
    id: `llm/${options.chat.id}`,
    async extract(text) {
      if (text.trim() === "") return { entities: [], relations: [] };
      try {
        let answer = "";
        for await (const chunk of options.chat.chat(
          [
            { role: "system", content: EXTRACTION_PROMPT },
            { role: "user", content: text.slice(0, maxChars) },
          ],
          { json: true },
        )) {
          answer += chunk;
        }
        return cleanLlmAnswer(firstJsonObject(answer));
      } catch (err) {
        if (!options.fallback) throw err;
        options.onFallback?.(err instanceof Error ? err.message : String(err));
        return options.fallback.extract(text);
      }
    },
  };
}
