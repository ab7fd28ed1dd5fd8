/**
 * The normalised form of an entity name: how the graph decides that two mentions are the same
 * entity, and how a query finds it (case-insensitively). NFKC, lower case, accents removed,
 * a trailing possessive "'s" and surrounding punctuation dropped, inner whitespace collapsed.
 * "  Ana LIMA's " and "ana lima" normalise alike; "São Paulo" and "Sao Paulo" too.
 */
export function normalizeEntityName(name: string): string {
  return name
    .normalize("NFKC")
    .toLowerCase()
    .normalize("NFD")
    .replace(/\p{M}+/gu, "")
    .normalize("NFC")
    .replace(/\s+/gu, " ")
    .trim()
    .replace(/['’]s$/u, "")
    .replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, "");
}
