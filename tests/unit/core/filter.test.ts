import { describe, expect, test } from "bun:test";
import { DionysusError } from "../../../src/core/errors.ts";
import {
  filterFromQuery,
  MemoryFilter,
  parseFilter,
  parseMetaPairs,
  resolveFilter,
  withDefaultScope,
  writeScope,
} from "../../../src/core/filter.ts";
import { mcpSource, Scope } from "../../../src/core/memory.ts";

const NOW = new Date("2026-03-01T12:00:00.000Z");

function refusal(fn: () => unknown): DionysusError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DionysusError);
    return err as DionysusError;
  }
  throw new Error("expected a refusal");
}

describe("scopes", () => {
  test.each([
    ["work", "work"],
    ["Project/Dionysus", "project/dionysus"],
    [" a.b_c-d/e1 ", "a.b_c-d/e1"],
    [".hidden/v1.2", ".hidden/v1.2"],
  ])("%p is the scope %p", (raw, want) => {
    expect(Scope.parse(raw)).toBe(want);
  });
  test.each([
    "",
    "/",
    "a/",
    "/a",
    "a//b",
    "a b",
    "a/*",
    "é",
    "x".repeat(129),
    "..",
    "../x",
    "a/./b",
    "a/..",
    "...",
  ])("%p is refused", (raw) => {
    expect(Scope.safeParse(raw).success).toBe(false);
  });
  test("mcpSource makes a valid source of any client name", () => {
    expect(mcpSource("Claude Desktop")).toBe("mcp:claude-desktop");
    expect(mcpSource("  ")).toBe("mcp:unknown");
    expect(mcpSource("x".repeat(200))).toHaveLength(68);
  });
});

describe("resolveFilter", () => {
  test("relative times become absolute against now; absolute ones are normalised to UTC", () => {
    expect(resolveFilter({ since: "30m", until: "2026-03-01T13:00:00+02:00" }, NOW)).toEqual({
      since: "2026-03-01T11:30:00.000Z",
      until: "2026-03-01T11:00:00.000Z",
    });
    expect(resolveFilter({ since: "12h" }, NOW).since).toBe("2026-03-01T00:00:00.000Z");
    expect(resolveFilter({ since: "7d" }, NOW).since).toBe("2026-02-22T12:00:00.000Z");
    expect(resolveFilter({ since: "2w" }, NOW).since).toBe("2026-02-15T12:00:00.000Z");
  });
  test("scopes split into exact and prefix; * and empty parts drop out", () => {
    expect(resolveFilter({ scope: "work" }, NOW)).toEqual({ scope: { exact: "work" } });
    expect(resolveFilter({ scope: "project/*" }, NOW)).toEqual({ scope: { prefix: "project" } });
    expect(resolveFilter({ scope: "*", tags: [], metadata: {} }, NOW)).toEqual({});
    expect(resolveFilter(undefined, NOW)).toEqual({});
  });
});

describe("parseFilter", () => {
  test("an unknown key names the key", () => {
    const err = refusal(() => parseFilter({ colour: "red" }));
    expect(err.code).toBe("invalid_input");
    expect(err.message).toContain('"colour"');
  });
  test.each([
    [{ scope: "a//b" }, "filter.scope"],
    [{ scope: "../x" }, "filter.scope"],
    [{ since: "7x" }, "filter.since"],
    [{ until: "tomorrow" }, "filter.until"],
    [{ since: "1h", until: "2h" }, "since is after until"],
    [{ kind: "dream" }, "filter.kind"],
    [{ source: "someone" }, "filter.source"],
    [{ tags: [""] }, "filter.tags"],
    [{ metadata: { k: [1] } }, "filter.metadata"],
    [{ metadata: { "": 1 } }, "filter.metadata"],
  ])("%p is refused naming %p", (raw, field) => {
    expect(refusal(() => parseFilter(raw)).message).toContain(field);
  });
  test("a valid filter passes through; scopes are lower-cased", () => {
    expect(parseFilter({ scope: "Work/*", tags: ["a"], since: "7d", metadata: { n: 1, ok: true } })).toEqual({
      scope: "work/*",
      tags: ["a"],
      since: "7d",
      metadata: { n: 1, ok: true },
    });
    expect(MemoryFilter.safeParse({ since: "2026-01-01T00:00:00Z", until: "1d" }).success).toBe(true);
  });
});

describe("defaults and query parameters", () => {
  test("a default scope narrows reads without a scope and fills writes without one", () => {
    expect(withDefaultScope(undefined, "work")).toEqual({ scope: "work/*" });
    expect(withDefaultScope({ tags: ["a"] }, "work")).toEqual({ tags: ["a"], scope: "work/*" });
    expect(withDefaultScope({ scope: "*" }, "work")).toEqual({ scope: "*" });
    expect(withDefaultScope({ kind: "identity" }, null)).toEqual({ kind: "identity" });
    expect(writeScope(undefined, "work")).toBe("work");
    expect(writeScope(null, "work")).toBeNull();
    expect(writeScope("home", "work")).toBe("home");
    expect(writeScope(undefined, undefined)).toBeNull();
  });
  test("query parameters and key=value pairs", () => {
    const q = new URLSearchParams(
      "scope=work&tag=a&tag=b&meta=n=2&meta=ok=true&meta=s=x=y&since=1d&recent=5",
    );
    expect(filterFromQuery(q)).toEqual({
      scope: "work",
      tags: ["a", "b"],
      since: "1d",
      metadata: { n: 2, ok: true, s: "x=y" },
    });
    expect(refusal(() => parseMetaPairs(["=v"], "--meta")).message).toContain("--meta");
  });
});
