import { describe, expect, test } from "bun:test";
import { queryTokens, toFtsQuery } from "../../../src/core/query.ts";

describe("toFtsQuery", () => {
  test("quotes each word and ORs them", () => {
    expect(toFtsQuery("Coffee with Ana")).toBe('"coffee" OR "with" OR "ana"');
  });

  test.each(['"', "*", "foo AND (", "NEAR(", "-x", "'; drop table memories; --", "🍕🎉", "   "])(
    "never yields FTS5 syntax for %p",
    (q) => {
      const fts = toFtsQuery(q);
      if (fts === undefined) return expect(queryTokens(q)).toEqual([]);
      // Only quoted word tokens joined by OR remain.
      expect(fts).toMatch(/^"[\p{L}\p{N}_]+"( OR "[\p{L}\p{N}_]+")*$/u);
    },
  );

  test("keeps non-Latin words and drops duplicates", () => {
    expect(queryTokens("Café café 東京")).toEqual(["café", "東京"]);
  });

  test("returns undefined when there are no words", () => {
    expect(toFtsQuery("*** ()")).toBeUndefined();
  });
});
