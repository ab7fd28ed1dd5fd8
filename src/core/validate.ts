/**
 * What a memory may hold, checked the same way by the edge (on every create and update) and by the
 * VPS (on every pushed mutation). Anything that passes can be stored by SQLite, PostgreSQL and
 * PGlite, and fits in one push; anything else is refused where it is written, with the reason,
 * instead of being queued and then refused by the VPS.
 *
 * | what                        | limit                                                         |
 * | --------------------------- | ------------------------------------------------------------- |
 * | content                     | not blank; ≤ max_content_bytes UTF-8 bytes (default 1 MiB)    |
 * | content, JSON-encoded       | ≤ 2 × max_content_bytes (control characters escape to 6 bytes) |
 * | tags                        | ≤ 64 tags of 1..64 characters                                  |
 * | metadata                    | a JSON object, nested ≤ 32 deep, ≤ 64 KiB JSON-encoded         |
 * | characters, everywhere      | no NUL (U+0000), no lone surrogate (not valid Unicode)         |
 * | numbers in metadata         | finite (no NaN or Infinity: JSON has no way to say them)       |
 */
import { DionysusError } from "./errors.ts";

/** Default largest content, in UTF-8 bytes (1 MiB); configurable. */
export const DEFAULT_MAX_CONTENT_BYTES = 1024 * 1024;
/** Content JSON-encoded (as it travels in a push) may be at most this many times its byte limit. */
export const CONTENT_JSON_FACTOR = 2;
export const MAX_TAGS = 64;
export const MAX_TAG_CHARS = 64;
/** Deepest nesting of objects and arrays in metadata (the metadata object itself is depth 1). */
export const MAX_METADATA_DEPTH = 32;
/** Largest metadata, JSON-encoded, in UTF-8 bytes (64 KiB). */
export const MAX_METADATA_BYTES = 64 * 1024;

const encoder = new TextEncoder();

/** UTF-8 bytes of `value` as JSON (what it weighs in a request body). */
export const jsonBytes = (value: unknown): number => encoder.encode(JSON.stringify(value)).length;

/** Why `s` cannot be stored, or undefined when it can. */
function badText(s: string): string | undefined {
  if (s.includes("\u0000")) return "must not contain NUL characters";
  if (!s.isWellFormed()) return "is not valid Unicode (lone surrogate)";
  return undefined;
}

function checkText(s: string, where: string): void {
  const bad = badText(s);
  if (bad) throw new DionysusError("invalid_input", `${where} ${bad}`, { details: { field: where } });
}

/**
 * Checks memory content: not empty or whitespace-only, at most `maxBytes` UTF-8 bytes raw and
 * `CONTENT_JSON_FACTOR × maxBytes` JSON-encoded, no NUL characters and no lone surrogates.
 */
export function validateContent(content: string, maxBytes = DEFAULT_MAX_CONTENT_BYTES): string {
  if (content.trim().length === 0) throw new DionysusError("invalid_input", "content must not be empty");
  const bytes = encoder.encode(content).length;
  if (bytes > maxBytes) {
    throw new DionysusError("payload_too_large", `content is ${bytes} bytes; the limit is ${maxBytes}`, {
      details: { bytes, limit: maxBytes },
    });
  }
  const bad = badText(content);
  if (bad) throw new DionysusError("invalid_input", `content ${bad}`);
  // JSON escaping makes at most 6 bytes of one (a control character as \u0001): only content
  // over a third of the limit can pass the encoded limit, so only that is measured.
  const encodedLimit = CONTENT_JSON_FACTOR * maxBytes;
  const encoded = bytes * 6 <= encodedLimit ? bytes : jsonBytes(content) - 2; // without the quotes
  if (encoded > encodedLimit) {
    throw new DionysusError(
      "payload_too_large",
      `content is ${encoded} bytes JSON-encoded (control characters take 6 bytes each); the limit is ${encodedLimit}`,
      { details: { bytes: encoded, limit: encodedLimit } },
    );
  }
  return content;
}

/** Checks tags: at most {@link MAX_TAGS}, each 1..{@link MAX_TAG_CHARS} characters, storable text. */
export function validateTags(tags: readonly unknown[]): void {
  if (tags.length > MAX_TAGS)
    throw new DionysusError("invalid_input", `tags: at most ${MAX_TAGS} tags (got ${tags.length})`);
  tags.forEach((tag, i) => {
    if (typeof tag !== "string") throw new DionysusError("invalid_input", `tags[${i}] must be a string`);
    if (tag.trim().length === 0) throw new DionysusError("invalid_input", `tags[${i}] must not be empty`);
    if (tag.length > MAX_TAG_CHARS)
      throw new DionysusError("invalid_input", `tags[${i}] is longer than ${MAX_TAG_CHARS} characters`);
    checkText(tag, `tags[${i}]`);
  });
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * Checks metadata: a plain JSON object (strings, finite numbers, booleans, null, arrays, objects)
 * nested at most {@link MAX_METADATA_DEPTH} deep, at most {@link MAX_METADATA_BYTES} JSON-encoded,
 * with no NUL or lone surrogate in any key or string value. Walks iteratively and stops at the
 * first problem, so hostile nesting costs nothing and never overflows the stack.
 */
export function validateMetadata(metadata: unknown): void {
  if (!isPlainObject(metadata)) throw new DionysusError("invalid_input", "metadata must be a JSON object");
  const stack: Array<{ value: unknown; path: string; depth: number }> = [
    { value: metadata, path: "metadata", depth: 1 },
  ];
  // Each value takes at least two bytes of JSON (itself and a separator): more values than half
  // the byte limit is too large, whatever they are. This also bounds the walk.
  let budget = MAX_METADATA_BYTES / 2;
  while (stack.length > 0) {
    const { value, path, depth } = stack.pop()!;
    if (--budget < 0)
      throw new DionysusError(
        "payload_too_large",
        `metadata holds more than ${MAX_METADATA_BYTES / 2} values; its limit is ${MAX_METADATA_BYTES} bytes JSON-encoded`,
        { details: { limit: MAX_METADATA_BYTES } },
      );
    if (typeof value === "string") {
      checkText(value, path);
      continue;
    }
    if (typeof value === "number") {
      if (!Number.isFinite(value))
        throw new DionysusError("invalid_input", `${path} must be a finite number`, {
          details: { field: path },
        });
      continue;
    }
    if (value === null || typeof value === "boolean") continue;
    const container = Array.isArray(value) || isPlainObject(value);
    if (!container)
      throw new DionysusError("invalid_input", `${path} is not a JSON value (${typeof value})`, {
        details: { field: path },
      });
    if (depth > MAX_METADATA_DEPTH)
      throw new DionysusError(
        "invalid_input",
        `metadata is nested deeper than ${MAX_METADATA_DEPTH} levels (at ${path.slice(0, 200)})`,
        { details: { limit_depth: MAX_METADATA_DEPTH } },
      );
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--)
        stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 });
    } else {
      const entries = Object.entries(value as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, v] = entries[i]!;
        checkText(key, `${path} key ${JSON.stringify(key.slice(0, 40))}`);
        stack.push({ value: v, path: `${path}.${key.slice(0, 40)}`, depth: depth + 1 });
      }
    }
  }
  const bytes = jsonBytes(metadata);
  if (bytes > MAX_METADATA_BYTES)
    throw new DionysusError(
      "payload_too_large",
      `metadata is ${bytes} bytes JSON-encoded; the limit is ${MAX_METADATA_BYTES}`,
      { details: { bytes, limit: MAX_METADATA_BYTES } },
    );
}

/**
 * Checks the fields a write sets (any of content, tags, metadata; absent ones are not checked).
 * Throws a DionysusError (`invalid_input` or `payload_too_large`) naming the field.
 */
export function validateMemoryFields(
  fields: { content?: string; tags?: readonly unknown[]; metadata?: unknown },
  maxContentBytes = DEFAULT_MAX_CONTENT_BYTES,
): void {
  if (fields.content !== undefined) validateContent(fields.content, maxContentBytes);
  if (fields.tags !== undefined) validateTags(fields.tags);
  if (fields.metadata !== undefined) validateMetadata(fields.metadata);
}
