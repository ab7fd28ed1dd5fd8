/** Random secrets and their at-rest form (SHA-256). High-entropy tokens need no slow hash. */
import { createHash, randomBytes } from "node:crypto";

/** `<prefix>_<base64url of n random bytes>`. */
export function randomSecret(prefix: string, bytes = 32): string {
  return `${prefix}_${randomBytes(bytes).toString("base64url")}`;
}

export function sha256Hex(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}

/** RFC 8628 §6.1: consonants only, no vowels (no words) and no look-alikes such as 0/O or 1/I. */
const USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";

/** A user code like `BCDF-GHJK` (20^8 ≈ 2.6e10 codes). */
export function randomUserCode(): string {
  const b = randomBytes(8);
  let s = "";
  for (let i = 0; i < 8; i++) s += USER_CODE_ALPHABET[b[i]! % USER_CODE_ALPHABET.length];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

/** What the user typed, normalised: case and separators do not matter. */
export function normaliseUserCode(input: string): string {
  return input.toUpperCase().replace(/[^A-Z]/g, "");
}

/** Key prefixes, so a leaked secret is recognisable (secret scanners) and its kind obvious. */
export const SECRET_PREFIX = { apiKey: "dny", access: "dna", refresh: "dnr", deviceCode: "dnd" } as const;
