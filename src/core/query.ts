/**
 * Turning user text into a safe full-text query. User text is never passed raw to FTS5 MATCH
 * (or to Postgres tsquery): it is split into word tokens, each token is quoted as a string
 * literal, and the tokens are OR-ed so that ranking (bm25) rather than strict matching decides.
 */

const TOKEN_RE = /[\p{L}\p{N}_]+/gu;
/** At most this many distinct tokens are used; long queries keep their first ones. */
export const MAX_QUERY_TOKENS = 32;

/** The distinct lower-cased word tokens of a text, in order of first appearance. */
export function queryTokens(text: string): string[] {
  const seen = new Set<string>();
  for (const m of text.normalize("NFKC").toLowerCase().matchAll(TOKEN_RE)) {
    const t = m[0];
    if (t.length > 0 && t.length <= 64) seen.add(t);
    if (seen.size >= MAX_QUERY_TOKENS) break;
  }
  return [...seen];
}

/** Common English words that carry no meaning for recall on their own: keyword search on the
 * edge and on the VPS drops them from a query that has other words. */
export const QUESTION_STOPWORDS: ReadonlySet<string> = new Set(
  `a about above after again against all am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off
on once only or other our ours ourselves out over own same she should so some such than that the their theirs
them themselves then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves say said tell told`
    .split(/\s+/)
    .filter(Boolean),
);

/**
 * An FTS5 MATCH expression for a user query, or `undefined` when the text has no searchable
 * words (then the answer is an empty list, not an error). Tokens contain only letters, digits
 * and `_`, so wrapping them in double quotes makes each one a plain string literal.
 */
export function toFtsQuery(text: string): string | undefined {
  const tokens = queryTokens(text);
  if (tokens.length === 0) return undefined;
  return tokens.map((t) => `"${t}"`).join(" OR ");
}
