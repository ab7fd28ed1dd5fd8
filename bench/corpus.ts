/**
 * A synthetic but realistic-looking corpus of personal memories: English function words and
 * common words at the top of a Zipf distribution, then a few thousand made-up but pronounceable
 * content words, in sentences of varied length; memories from one sentence to a few paragraphs.
 * Seeded, so every run of the benchmark sees the same text.
 */

/** mulberry32: a small, fast, seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMMON =
  `the of and to a in that is was he for it with as his on be at by i had this not are but from or
have an they which one you were her all she there would their we him been has when who will more no if out so
said what up its about into than them can only other new some could time these two may then do first any my now
such like our over man me even most made after also did many before must through back years where much your way
well down should because each just those people how too little state good very make world still own see men work
long get here between both life being under never day same another know while last might us great old year off
come since against go came right used take three morning coffee home friend mother father city house garden
water book letter school street night week evening dinner lunch walk river train trip doctor meeting project
birthday music movie idea phone email weekend summer winter spring autumn market bread tea dog cat child sister
brother office plan remember think told asked wanted felt went saw found called wrote read talked met visited`
    .split(/\s+/)
    .filter(Boolean);

const ONSETS = "b br c cl d dr f fl g gr h j k l m n p pl pr r s sh st t th tr v w z".split(" ");
const VOWELS = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "io", "ee"];
const CODAS = ["", "", "n", "r", "l", "s", "t", "nd", "st", "rk", "m", "ng", "ck", "th"];
const SUFFIXES = ["", "", "", "ing", "ed", "er", "s", "ly", "ness", "ion"];

/** Builds the vocabulary: common words first, then pronounceable made-up words. */
export function vocabulary(size: number, seed = 7): string[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const words = [...new Set(COMMON)];
  const seen = new Set(words);
  while (words.length < size) {
    const syllables = 1 + Math.floor(r() * 3);
    let w = "";
    for (let i = 0; i < syllables; i++)
      w += pick(ONSETS) + pick(VOWELS) + (i === syllables - 1 ? pick(CODAS) : "");
    w += pick(SUFFIXES);
    if (w.length >= 3 && !seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  }
  return words;
}

/** Samples ranks 0..n-1 with probability proportional to 1/(rank+1)^s. */
export function zipfSampler(n: number, s: number, random: () => number): () => number {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cdf[i] = sum;
  }
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export interface Corpus {
  words: string[];
  memory(): { content: string; tags: string[] };
  query(): string;
}

export function corpus(seed = 42, vocabSize = 5000): Corpus {
  const words = vocabulary(vocabSize);
  const r = rng(seed);
  const zipf = zipfSampler(words.length, 1.05, r);
  // Queries lean on content words (people search for "garden", not for "the").
  const content = words.slice(60);
  const zipfContent = zipfSampler(content.length, 0.9, r);

  const sentence = () => {
    const len = 5 + Math.floor(r() * 16);
    const ws = Array.from({ length: len }, () => words[zipf()]!);
    const s = ws.join(" ");
    const end = r() < 0.1 ? "?" : r() < 0.15 ? "!" : ".";
    return s.charAt(0).toUpperCase() + s.slice(1) + (r() < 0.2 ? "," : "") + end;
  };
  const sentences = () => {
    const x = r();
    // 40% one or two sentences, 40% a paragraph, 20% a few paragraphs.
    if (x < 0.4) return 1 + Math.floor(r() * 2);
    if (x < 0.8) return 3 + Math.floor(r() * 6);
    return 10 + Math.floor(r() * 30);
  };

  return {
    words,
    memory() {
      const n = sentences();
      const parts: string[] = [];
      for (let i = 0; i < n; i++) parts.push(sentence());
      let text = parts.join(" ");
      if (n > 8) text = text.replace(/\. /g, (m) => (r() < 0.15 ? ".\n\n" : m));
      const tags = r() < 0.3 ? [content[zipfContent()]!] : [];
      return { content: text, tags };
    },
    query() {
      const x = r();
      const cw = () => content[zipfContent()]!;
      if (x < 0.4) return cw();
      if (x < 0.7) return `${cw()} ${cw()}`;
      if (x < 0.85) return `${cw()} ${cw()} ${cw()}`;
      // A natural question, with the very common words real questions have.
      return `what did I say about the ${cw()} and ${cw()}`;
    },
  };
}
