/**
 * The built-in embedder: needs no model, no download and no network. It hashes features of the
 * text into a fixed-size vector ("feature hashing", the hashing trick):
 *
 * - word unigrams (weight 1), word bigrams (0.5), and character trigrams of each word padded with
 *   `#` (0.25 each, so a word's trigrams together weigh about as much as the word);
 * - very common English words ("the", "and", ...) weigh 0.1, so they barely make texts similar;
 * - counts are damped (1 + ln tf), each feature lands in one of `dimensions` buckets with a sign
 *   taken from a second hash (so collisions cancel out on average), and the vector is L2-normalised.
 *
 * Text is normalised first: NFKC, lower case, accents removed ("Café" = "cafe").
 *
 * What it captures: shared words, shared word pairs (local word order), and shared word parts
 * (plural/singular, "meeting"/"meetings"/"meet", typos that keep most trigrams). What it does not
 * capture: meaning. Synonyms ("car"/"automobile"), paraphrases and translations score as
 * unrelated. For that, configure Ollama with an embedding model.
 */
import { DionysusError } from "../errors.ts";
import { fnv1a } from "../hash.ts";
import type { Embedder } from "../ports/embedder.ts";

export interface BuiltinEmbedderOptions {
  /** Vector length; 384 by default. */
  dimensions?: number;
}

const WORD_RE = /[\p{L}\p{N}]+/gu;
const UNIGRAM = 1;
const BIGRAM = 0.5;
const TRIGRAM = 0.25;
const STOPWORD = 0.1;

const STOPWORDS = new Set(
  (
    "a an and are as at be been but by did do does for from had has have he her him his i if in into is it " +
    "its me my no not of on or our she so that the their them then there they this to us was we were what " +
    "when where which who will with you your"
  ).split(" "),
);

/** The normalised words of a text: NFKC, lower case, accents (combining marks) removed. */
export function embedderWords(text: string): string[] {
  const plain = text
    .normalize("NFKC")
    .toLowerCase()
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .normalize("NFC");
  return plain.match(WORD_RE) ?? [];
}

/** Weighted features of a text, before hashing. */
function features(text: string): Map<string, { count: number; weight: number }> {
  const out = new Map<string, { count: number; weight: number }>();
  const add = (key: string, weight: number) => {
    const f = out.get(key);
    if (f) f.count++;
    else out.set(key, { count: 1, weight });
  };
  const words = embedderWords(text);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const stop = STOPWORDS.has(w);
    add(`w:${w}`, stop ? STOPWORD : UNIGRAM);
    if (i + 1 < words.length) {
      const next = words[i + 1]!;
      add(`b:${w} ${next}`, stop && STOPWORDS.has(next) ? STOPWORD : BIGRAM);
    }
    if (!stop) {
      const padded = `#${w}#`;
      // Iterate by code point so that a trigram never splits a surrogate pair.
      const cps = Array.from(padded);
      for (let j = 0; j + 3 <= cps.length; j++) add(`c:${cps[j]}${cps[j + 1]}${cps[j + 2]}`, TRIGRAM);
    }
  }
  return out;
}

/** Embeds one text into a new L2-normalised vector (all zeros for a text without words). */
export function hashEmbed(text: string, dimensions: number): number[] {
  const v = new Float64Array(dimensions);
  for (const [key, f] of features(text)) {
    const h = fnv1a(key, 0);
    const sign = fnv1a(key, 0x9e3779b9) & 1 ? 1 : -1;
    v[h % dimensions]! += sign * f.weight * (1 + Math.log(f.count));
  }
  let norm = 0;
  for (let i = 0; i < dimensions; i++) norm += v[i]! * v[i]!;
  norm = Math.sqrt(norm);
  const out = new Array<number>(dimensions);
  for (let i = 0; i < dimensions; i++) out[i] = norm > 0 ? v[i]! / norm : 0;
  return out;
}

/** Cosine similarity of two vectors of the same length (0 when either is all zeros). */
export function cosine(a: readonly number[], b: readonly number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i] ?? 0;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

/** Creates the built-in feature-hashing embedder (see the module comment for what it captures). */
export function createBuiltinEmbedder(options: BuiltinEmbedderOptions = {}): Embedder {
  const dimensions = options.dimensions ?? 384;
  if (!Number.isInteger(dimensions) || dimensions < 16 || dimensions > 4096) {
    throw new DionysusError(
      "config_invalid",
      `built-in embedder dimensions must be an integer 16..4096, got ${dimensions}`,
    );
  }
  return {
    id: `builtin-hash-v1/${dimensions}`,
    dimensions,
    embed: async (texts) => texts.map((t) => hashEmbed(t, dimensions)),
  };
}
