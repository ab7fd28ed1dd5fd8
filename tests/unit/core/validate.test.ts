/** The write validation shared by the edge and the VPS (src/core/validate.ts), and push sizing. */
import { describe, expect, test } from "bun:test";
import { DionysusError } from "../../../src/core/errors.ts";
import type { Mutation } from "../../../src/core/protocol/sync.ts";
import {
  MAX_METADATA_BYTES,
  MAX_METADATA_DEPTH,
  validateContent,
  validateMemoryFields,
  validateMetadata,
  validateTags,
} from "../../../src/core/validate.ts";
import { chunkByBytes, pushBytes } from "../../../src/edge/sync/engine.ts";

function refusal(fn: () => unknown): DionysusError {
  try {
    fn();
  } catch (err) {
    if (err instanceof DionysusError) return err;
    throw new Error(`expected a DionysusError, got ${String(err)}`);
  }
  throw new Error("expected a refusal");
}

/** `{"a":{"a":…1…}}`, `depth` objects deep (the outer one is depth 1). */
function nested(depth: number): Record<string, unknown> {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = { a: v };
  return v as Record<string, unknown>;
}

/** `bytes` of distinct words ("w0 w1 w2 ..."). */
function distinctWords(bytes: number): string {
  const words: string[] = [];
  let len = 0;
  for (let i = 0; len < bytes; i++) {
    const w = `w${i.toString(36)}`;
    words.push(w);
    len += w.length + 1;
  }
  return words.join(" ").slice(0, bytes);
}

const MiB = 1024 * 1024;

describe("validation of what a memory may hold", () => {
  test("NUL and lone surrogates are refused in tags, metadata keys and metadata values", () => {
    expect(refusal(() => validateTags(["ok", "a\u0000b"])).message).toBe(
      "tags[1] must not contain NUL characters",
    );
    expect(refusal(() => validateTags(["\ud800x"])).message).toContain("lone surrogate");
    expect(refusal(() => validateMetadata({ "k\u0000": 1 })).message).toContain("NUL");
    expect(refusal(() => validateMetadata({ ok: { deep: ["x", "\udfff"] } })).message).toBe(
      "metadata.ok.deep[1] is not valid Unicode (lone surrogate)",
    );
    expect(refusal(() => validateMetadata({ "\ud83d": "x" })).message).toContain("lone surrogate");
    expect(refusal(() => validateMetadata({ v: "nul\u0000" })).code).toBe("invalid_input");
    // A well-formed pair is fine.
    expect(() => validateMemoryFields({ tags: ["😀"], metadata: { "😀": "😀" } })).not.toThrow();
  });

  test("metadata nested 20,000 deep is refused without overflowing the stack; 32 levels are fine", () => {
    const err = refusal(() => validateMetadata(nested(20_000)));
    expect(err.code).toBe("invalid_input");
    expect(err.message).toContain(`deeper than ${MAX_METADATA_DEPTH}`);
    expect(() => validateMetadata(nested(MAX_METADATA_DEPTH))).not.toThrow();
    expect(() => validateMetadata(nested(MAX_METADATA_DEPTH + 1))).toThrow("deeper");
    // Arrays count as levels too.
    let arr: unknown = [];
    for (let i = 0; i < 100; i++) arr = [arr];
    expect(() => validateMetadata({ a: arr })).toThrow("deeper");
  });

  test("metadata over 64 KiB JSON-encoded, or with too many values, is refused; non-JSON values too", () => {
    expect(refusal(() => validateMetadata({ big: "x".repeat(MAX_METADATA_BYTES) })).code).toBe(
      "payload_too_large",
    );
    expect(refusal(() => validateMetadata({ many: new Array(200_000).fill(0) })).code).toBe(
      "payload_too_large",
    );
    // Escaping counts: 12 Ki control characters are 72 KiB of JSON.
    expect(refusal(() => validateMetadata({ c: "\u0001".repeat(12 * 1024) })).code).toBe("payload_too_large");
    expect(() => validateMetadata({ fine: "x".repeat(60 * 1024) })).not.toThrow();
    expect(refusal(() => validateMetadata({ n: Number.NaN })).message).toContain("finite");
    expect(refusal(() => validateMetadata({ d: new Date() })).message).toContain("not a JSON value");
    expect(refusal(() => validateMetadata([])).message).toContain("JSON object");
  });

  test("content is measured raw and JSON-encoded: 1 MiB of control characters is refused", () => {
    const controls = "\u0001".repeat(MiB);
    const err = refusal(() => validateContent(controls));
    expect(err.code).toBe("payload_too_large");
    expect(err.message).toContain("JSON-encoded");
    // 1 MiB of distinct words is within the limits (the VPS indexes a prefix of it).
    expect(() => validateContent(distinctWords(MiB))).not.toThrow();
    expect(refusal(() => validateContent("x".repeat(MiB + 1))).code).toBe("payload_too_large");
  });

  test("tags: count, length and emptiness", () => {
    expect(() => validateTags(new Array(65).fill("t"))).toThrow("at most 64");
    expect(() => validateTags(["x".repeat(65)])).toThrow("longer than 64");
    expect(() => validateTags(["  "])).toThrow("empty");
  });
});

describe("push sizing", () => {
  const t = new Date().toISOString();
  const mutation = (id: number, content: string): Mutation => ({
    mutation_id: id,
    op: "create",
    id: "0190b7e0-0000-7000-8000-000000000000",
    hlc: "0001700000000000-0000-dev",
    data: {
      content,
      kind: "episodic",
      tags: [],
      metadata: {},
      created_at: t,
      updated_at: t,
      scope: null,
      source: "cli",
      occurred_at: null,
    },
  });

  test("batches are cut by the bytes actually sent, escapes included", () => {
    // 100 KiB of control characters: 600 KiB on the wire, though only 100 Ki characters.
    const heavy = mutation(1, "\u0001".repeat(100 * 1024));
    expect(pushBytes([heavy])).toBe(new TextEncoder().encode(JSON.stringify({ mutations: [heavy] })).length);
    const chunks = chunkByBytes([heavy, mutation(2, "x"), heavy, mutation(3, "y")], 700 * 1024);
    expect(chunks.map((c) => c.length)).toEqual([2, 2]);
    for (const c of chunks) expect(pushBytes(c)).toBeLessThanOrEqual(700 * 1024);
    // Multi-byte text is counted in UTF-8 bytes.
    const wide = mutation(4, "é".repeat(1000));
    expect(pushBytes([wide])).toBe(new TextEncoder().encode(JSON.stringify({ mutations: [wide] })).length);
  });

  test("a mutation larger than the limit gets a batch of its own", () => {
    const big = mutation(2, "x".repeat(5000));
    const chunks = chunkByBytes([mutation(1, "a"), big, mutation(3, "b")], 4000);
    expect(chunks.map((c) => c.map((m) => m.mutation_id))).toEqual([[1], [2], [3]]);
  });
});
