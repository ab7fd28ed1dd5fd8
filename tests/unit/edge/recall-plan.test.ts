import { describe, expect, test } from "bun:test";
import { type PlanSource, planRecall } from "../../../src/edge/store/sqlite/recall-plan.ts";

/** Document frequencies given by the test instead of an index (a stub, not a fake store). */
function stubCounts(
  df: Record<string, number>,
  maxRowid = 100_000,
  windowMatches = 500,
): PlanSource & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    countCapped: (t, cap) => {
      asked.push(t);
      return Math.min(df[t] ?? 0, cap);
    },
    countInWindow: (_m, _lo, cap) => Math.min(windowMatches, cap),
    maxRowid: () => maxRowid,
  };
}

describe("planRecall", () => {
  test("rare words choose the candidates; common words only re-rank them", () => {
    const plan = planRecall("garden party", stubCounts({ garden: 9000, party: 120 }), 2000);
    expect(plan).toEqual({ match: '("party" NOT "garden") OR ("party" AND "garden")' });
  });

  test("several rare words are OR-ed while they fit the budget, the rest re-rank", () => {
    const plan = planRecall("alpha beta gamma", stubCounts({ alpha: 900, beta: 800, gamma: 700 }), 2000);
    expect(plan).toEqual({ match: '(("gamma" OR "beta") NOT "alpha") OR (("gamma" OR "beta") AND "alpha")' });
    expect(planRecall("alpha beta", stubCounts({ alpha: 10, beta: 20 }), 2000)).toEqual({
      match: '"alpha" OR "beta"',
    });
  });

  test("stopwords are dropped when the query has other words, and never counted", () => {
    const src = stubCounts({ the: 95_000, what: 15_000, ana: 40, museum: 300 });
    const plan = planRecall("What did I say about the museum with Ana?", src, 2000);
    expect(plan).toEqual({ match: '"ana" OR "museum"' });
    expect(src.asked.sort()).toEqual(["ana", "museum"]);
  });

  test("a query of only common words ranks the newest matches, in a window sized by their density", () => {
    // 500 of the newest 2000 rows match: a quarter, so a window of 8000 rows holds about 2000.
    const plan = planRecall(
      "coffee morning",
      stubCounts({ coffee: 30_000, morning: 20_000 }, 100_000, 500),
      2000,
    );
    expect(plan).toEqual({ match: '"coffee" OR "morning"', minRowid: 100_000 - 8000 + 1 });
  });

  test("a query of only stopwords uses its first two", () => {
    const plan = planRecall(
      "the and of it",
      stubCounts({ the: 95_000, and: 80_000, of: 85_000, it: 50_000 }),
      2000,
    );
    expect(plan?.match).toBe('"the" OR "and"');
    expect(plan?.minRowid).toBeGreaterThan(1);
  });

  test("words that occur nowhere are dropped; no words at all means no plan", () => {
    expect(planRecall("zzyzx museum", stubCounts({ museum: 5 }))).toEqual({ match: '"museum"' });
    expect(planRecall("zzyzx qwerty", stubCounts({}))).toBeUndefined();
    expect(planRecall('"* ( NEAR', stubCounts({ near: 3 }))).toEqual({ match: '"near"' });
    expect(planRecall("🍕 -- ''", stubCounts({}))).toBeUndefined();
  });

  test.each(['"', "*", "foo AND (", "NEAR(", "-x", "'; drop table memories; --", 'a"b OR c*'])(
    "the MATCH expression for %p holds only quoted word tokens",
    (q) => {
      const plan = planRecall(
        q,
        stubCounts({
          foo: 3,
          and: 10,
          near: 2,
          x: 4,
          drop: 1,
          table: 1,
          memories: 3,
          a: 5,
          b: 6,
          or: 3,
          c: 1,
        }),
      );
      if (!plan) return;
      const stripped = plan.match
        .replace(/"[\p{L}\p{N}_]+"/gu, "")
        .replace(/\b(OR|AND|NOT)\b/g, "")
        .replace(/[()\s]/g, "");
      expect(stripped).toBe("");
    },
  );
});
