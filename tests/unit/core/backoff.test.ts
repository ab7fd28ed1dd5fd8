import { describe, expect, test } from "bun:test";
import { backoffDelay, parseRetryAfter, reconnectDelay } from "../../../src/core/backoff.ts";

describe("backoffDelay", () => {
  test("follows 10 s, 60 s, 300 s and stays at 300 s", () => {
    const mid = () => 0.5; // no jitter
    expect([1, 2, 3, 4, 50].map((n) => backoffDelay(n, mid))).toEqual([
      10_000, 60_000, 300_000, 300_000, 300_000,
    ]);
  });
  test("jitter stays within ±20 %", () => {
    expect(backoffDelay(1, () => 0)).toBe(8_000);
    expect(backoffDelay(1, () => 1)).toBe(12_000);
  });
});

describe("parseRetryAfter", () => {
  test("reads seconds and HTTP dates, ignores garbage", () => {
    expect(parseRetryAfter("7")).toBe(7_000);
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now)).toBe(30_000);
    expect(parseRetryAfter("soon")).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

test("reconnectDelay grows to a 30 s cap", () => {
  expect(reconnectDelay(1, () => 1)).toBe(1_000);
  expect(reconnectDelay(10, () => 1)).toBe(30_000);
  expect(reconnectDelay(10, () => 0)).toBe(15_000);
});
