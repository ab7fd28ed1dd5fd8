/**
 * An extractive summary, for consolidation when no LLM is configured: the sentences that carry
 * the most frequent content words of the memories (Luhn's method), in their original order. It
 * picks sentences; it never writes new ones.
 */

const STOPWORDS = new Set(
  (
    "a an and are as at be been but by can could did do does for from had has have he her him his how i if in " +
    "into is it its me my no not of on or our she so that the their them then there these they this those to " +
    "too us was we were what when where which who will with would you your just also very about after before"
  ).split(" "),
);

function contentWords(sentence: string): string[] {
  return (
    sentence
      .normalize("NFKC")
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  ).filter((w) => w.length > 1 && !STOPWORDS.has(w));
}

/** Splits text into sentences at . ! ? or line breaks. */
export function sentences(text: string): string[] {
  return text
    .split(/(?<=[.!?])\s+|\n+/u)
    .map((s) => s.trim())
    .filter((s) => /[\p{L}\p{N}]/u.test(s));
}

/**
 * Picks up to `maxSentences` (5) sentences, at most `maxChars` (1,000) characters in all, from
 * `texts`. Identical sentences count once. Deterministic; an input without sentences gives "".
 */
export function extractiveSummary(
  texts: readonly string[],
  options: { maxSentences?: number; maxChars?: number } = {},
): string {
  const maxSentences = options.maxSentences ?? 5;
  const maxChars = options.maxChars ?? 1000;
  const seen = new Set<string>();
  const all: { text: string; words: string[]; order: number }[] = [];
  for (const t of texts) {
    for (const s of sentences(t)) {
      const key = s.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      all.push({ text: s, words: contentWords(s), order: all.length });
    }
  }
  const freq = new Map<string, number>();
  for (const s of all) for (const w of new Set(s.words)) freq.set(w, (freq.get(w) ?? 0) + 1);
  const scored = all
    .filter((s) => s.words.length > 0)
    .map((s) => ({
      ...s,
      score: [...new Set(s.words)].reduce((a, w) => a + (freq.get(w) ?? 0), 0) / Math.sqrt(s.words.length),
    }))
    .sort((a, b) => b.score - a.score || a.order - b.order);
  const chosen: typeof scored = [];
  let chars = 0;
  for (const s of scored) {
    if (chosen.length >= maxSentences) break;
    if (chars + s.text.length > maxChars && chosen.length > 0) continue;
    chosen.push(s);
    chars += s.text.length + 1;
  }
  return chosen
    .sort((a, b) => a.order - b.order)
    .map((s) => (s.text.length > maxChars ? `${s.text.slice(0, maxChars - 1)}…` : s.text))
    .join(" ");
}
