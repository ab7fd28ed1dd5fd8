import { describe, expect, test } from "bun:test";
import pkg from "../../../package.json";
import { validateContent } from "../../../src/core/memory.ts";
import { isUuid, uuidv7 } from "../../../src/core/uuid.ts";
import { VERSION } from "../../../src/core/version.ts";

describe("uuidv7", () => {
  test("is a version-7 RFC 9562 UUID that sorts by time", () => {
    const a = uuidv7(1_000);
    const b = uuidv7(2_000);
    expect(isUuid(a)).toBe(true);
    expect(a[14]).toBe("7");
    expect("89ab").toContain(a[19]!);
    expect(a < b).toBe(true);
  });
});

describe("validateContent", () => {
  test("refuses empty, whitespace-only, oversized, NUL and lone-surrogate content", () => {
    expect(() => validateContent("")).toThrow("must not be empty");
    expect(() => validateContent(" \n\t ")).toThrow("must not be empty");
    expect(() => validateContent("x".repeat(11), 10)).toThrow("limit is 10");
    expect(() => validateContent("a\u0000b")).toThrow("NUL");
    expect(() => validateContent("a\uD800b")).toThrow("surrogate");
    expect(validateContent("héllo 👋")).toBe("héllo 👋");
  });
});

test("VERSION matches package.json", () => {
  expect(VERSION).toBe(pkg.version);
});
