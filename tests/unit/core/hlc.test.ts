import { describe, expect, test } from "bun:test";
import { compareHlc, formatHlc, HlcClock, parseHlc } from "../../../src/core/hlc.ts";

describe("HlcClock", () => {
  test("ticks are strictly increasing even when the wall clock stands still or goes back", () => {
    let wall = 1_000;
    const c = new HlcClock("dev-a", () => wall);
    const a = c.tick();
    const b = c.tick();
    wall = 500; // clock jumps backwards
    const d = c.tick();
    expect(compareHlc(a, b)).toBe(-1);
    expect(compareHlc(b, d)).toBe(-1);
    expect(parseHlc(d)).toEqual({ ms: 1_000, counter: 2, node: "dev-a" });
  });

  test("receive() orders later local stamps after a remote stamp from a clock far ahead", () => {
    const local = new HlcClock("dev-a", () => 1_000);
    const remote = new HlcClock("dev-b", () => 600_000); // ten minutes ahead
    const r = remote.tick();
    local.receive(r);
    const next = local.tick();
    expect(compareHlc(next, r)).toBe(1);
  });

  test("string order equals tuple order, with the node id as tie-break", () => {
    const s1 = formatHlc({ ms: 9, counter: 10, node: "a" });
    const s2 = formatHlc({ ms: 10, counter: 0, node: "a" });
    const s3 = formatHlc({ ms: 10, counter: 0, node: "b" });
    expect([s3, s2, s1].sort()).toEqual([s1, s2, s3]);
  });

  test("resumes from a persisted stamp", () => {
    const c = new HlcClock("dev-a", () => 5, formatHlc({ ms: 100, counter: 7, node: "dev-a" }));
    expect(parseHlc(c.tick())).toEqual({ ms: 100, counter: 8, node: "dev-a" });
  });

  test("rejects malformed stamps and node ids", () => {
    expect(parseHlc("not-a-stamp")).toBeUndefined();
    expect(parseHlc("000000000000001-000000-a b")).toBeUndefined();
    expect(() => new HlcClock("bad node")).toThrow();
  });
});
