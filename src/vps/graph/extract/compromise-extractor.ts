/**
 * Local entity extraction with the `compromise` NLP library (rule- and lexicon-based English; no
 * model to download). Per sentence:
 * - people (`#Person`, honorifics like "Dr." dropped), places (`#Place`) and organisations
 *   (`#Organization`) as compromise tags them;
 * - topics: the nouns of each noun phrase that are none of those and not pronouns, dates, numbers
 *   or generic words ("thing", "people", "time"), plural heads made singular ("logos" -> "logo");
 * - a `co_occurs` relation between every two distinct entities of the same sentence (from/to in
 *   normalised-name order, so "Ana ... Bob" and "Bob ... Ana" give the same relation).
 *
 * Limits: English only; names compromise does not know may be missed or typed as topics. An
 * entity keeps the type of its first appearance; person/place/organization win over topic.
 * At most {@link MAX_ENTITIES} entities per memory (first appearances first), and relations only
 * between the first {@link MAX_ENTITIES_PER_SENTENCE} entities of a sentence.
 */
import nlp from "compromise";
import type { EntityExtractor, EntityType, Extraction } from "../../../core/ports/entity-extractor.ts";
import { normalizeEntityName } from "../normalize.ts";

/** Most entities kept per memory. */
export const MAX_ENTITIES = 50;
/** Relations are made between at most this many entities of one sentence. */
export const MAX_ENTITIES_PER_SENTENCE = 12;

const NOT_TOPIC =
  "(#Pronoun|#Determiner|#Possessive|#Person|#Place|#Organization|#Date|#Value|#Adjective|#Honorific|" +
  "#Conjunction|#Preposition|#Verb|#Adverb|#QuestionWord)";

/** Nouns too generic to be a topic on their own. */
const GENERIC = new Set(
  (
    "thing things stuff people person lot lots way ways time times day days week weeks month months year " +
    "years today tomorrow yesterday tonight morning evening night something anything everything nothing " +
    "someone anyone everyone one ones kind sort bit part end point fact case place"
  ).split(" "),
);

/** compromise's `View` surface that this file uses. */
interface View {
  text(format?: string): string;
  forEach(fn: (v: View) => void): View;
  not(match: string): View;
  has(match: string): boolean;
  people(): View;
  places(): View;
  organizations(): View;
  nouns(): View & { toSingular(): View };
  sentences(): View;
  terms(): View;
  found: boolean;
}

const parse = nlp as unknown as (text: string) => View;

function clean(text: string): string {
  return text
    .replace(/\s+/gu, " ")
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "")
    .replace(/['’]s$/u, "");
}

function singularTopic(fragment: View): string {
  const text = clean(fragment.text("normal"));
  if (!fragment.has("#Plural")) return text;
  const words = text.split(" ");
  const head = words.pop()!;
  const doc = parse(head);
  doc.nouns().toSingular();
  const singular = clean(doc.text("normal"));
  return [...words, singular || head].join(" ");
}

/** Entities of one sentence, in order: people, places, organisations, then topics. */
function sentenceEntities(s: View): { name: string; type: EntityType }[] {
  const out: { name: string; type: EntityType }[] = [];
  const push = (view: View, type: EntityType) =>
    view.forEach((m) => {
      const name = clean(m.text());
      if (name) out.push({ name, type });
    });
  push(s.people().not("#Honorific"), "person");
  push(s.places(), "place");
  push(s.organizations(), "organization");
  s.nouns().forEach((np) => {
    np.not(NOT_TOPIC).forEach((fragment) => {
      const name = singularTopic(fragment);
      if (name.length < 2 || GENERIC.has(name) || /^\p{N}+$/u.test(name)) return;
      out.push({ name, type: "topic" });
    });
  });
  return out;
}

/** Extracts entities and co-occurrence relations from one text (deterministic). */
export function extractEntities(text: string): Extraction {
  if (text.trim() === "") return { entities: [], relations: [] };
  const byNorm = new Map<string, { name: string; type: EntityType }>();
  const relations = new Map<string, { from: string; to: string; type: string }>();
  parse(text)
    .sentences()
    .forEach((s) => {
      const inSentence: string[] = [];
      for (const e of sentenceEntities(s)) {
        const norm = normalizeEntityName(e.name);
        if (!norm) continue;
        const known = byNorm.get(norm);
        if (!known) {
          if (byNorm.size >= MAX_ENTITIES) continue;
          byNorm.set(norm, e);
        } else if (known.type === "topic" && e.type !== "topic") {
          known.type = e.type;
        }
        if (!inSentence.includes(norm) && inSentence.length < MAX_ENTITIES_PER_SENTENCE)
          inSentence.push(norm);
      }
      for (let i = 0; i < inSentence.length; i++) {
        for (let j = i + 1; j < inSentence.length; j++) {
          const [a, b] = [inSentence[i]!, inSentence[j]!].sort();
          const key = `${a}\u0000${b}`;
          if (!relations.has(key)) {
            relations.set(key, { from: byNorm.get(a!)!.name, to: byNorm.get(b!)!.name, type: "co_occurs" });
          }
        }
      }
    });
  return { entities: [...byNorm.values()].map((e) => ({ ...e })), relations: [...relations.values()] };
}

/** Creates the local extractor (`compromise-v1`). */
export function createCompromiseExtractor(): EntityExtractor {
  return {
    id: "compromise-v1",
    extract: async (text) => extractEntities(text),
  };
}
