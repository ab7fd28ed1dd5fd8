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
