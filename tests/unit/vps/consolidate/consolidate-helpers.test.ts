import { describe, expect, test } from "bun:test";
import { uuidv7 } from "../../../../src/core/uuid.ts";
import {
  type DedupCandidate,
  findDuplicateGroups,
  jaccard,
  shingles,
} from "../../../../src/vps/consolidate/near-duplicates.ts";
import { extractiveSummary, sentences } from "../../../../src/vps/consolidate/summary.ts";
import { buildAskMessages, buildSummaryMessages } from "../../../../src/vps/search/prompts.ts";

let t = Date.UTC(2026, 0, 1);
const mem = (content: string): DedupCandidate => {
  t += 60_000;
  return { id: uuidv7(t), content, created_at: new Date(t).toISOString() };
};

describe("findDuplicateGroups", () => {
  test("exact and near duplicates group together; the oldest survives", () => {
    const a = mem("Had coffee with Ana in Lisbon");
    const b = mem("had coffee with ANA in Lisbon!");
    const c = mem("Had coffee with Ana in Lisbon today");
    const other = mem("Bought tomatoes and basil at the market");
    const groups = findDuplicateGroups([c, other, b, a]);
    expect(groups).toEqual([{ survivor: a.id, duplicates: [b.id, c.id], similarity: expect.any(Number) }]);
    expect(groups[0]!.similarity).toBeCloseTo(5 / 6, 10);
  });

  test("related but different memories are not merged; the threshold is adjustable", () => {
    const a = mem("Meeting with the design team about the new logo on Friday");
    const b = mem("Meeting with the finance team about the budget on Monday");
    expect(findDuplicateGroups([a, b])).toEqual([]);
    const c = mem("Had coffee with Ana in Lisbon");
    const d = mem("Had coffee with Ana in Porto");
    expect(findDuplicateGroups([c, d])).toEqual([]);
    expect(jaccard(shingles(c.content), shingles(d.content))).toBeCloseTo(4 / 6, 10);
    expect(findDuplicateGroups([c, d], { threshold: 0.6 })).toHaveLength(1);
  });

  test("empty or word-less memories never group; many distinct memories give no groups", () => {
    expect(findDuplicateGroups([mem(""), mem("!!!"), mem("   ")])).toEqual([]);
    const many = Array.from({ length: 2000 }, (_, i) =>
      mem(`note number ${i} about topic ${i * 7919} and item ${i % 13}`),
    );
    expect(findDuplicateGroups(many)).toEqual([]);
  });

  test("finds each planted duplicate among many memories", () => {
    const base = Array.from({ length: 1000 }, (_, i) =>
      mem(`entry ${i} talks about subject ${i * 31} in place ${i * 17}`),
    );
    const copies = [3, 500, 999].map((i) => mem(`${base[i]!.content}.`));
    const groups = findDuplicateGroups([...base, ...copies]);
    expect(groups.map((g) => [g.survivor, g.duplicates])).toEqual(
      [3, 500, 999].map((i, k) => [base[i]!.id, [copies[k]!.id]]).sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    );
  });
});

describe("extractiveSummary", () => {
  test("keeps the sentences about what recurs, in their original order", () => {
    const summary = extractiveSummary(
      [
        "Met Ana in Lisbon. The weather was grey.",
        "Ana showed me the Lisbon garden project. Lunch was fine.",
        "The garden project in Lisbon needs funding from Ana's team.",
      ],
      { maxSentences: 2 },
    );
    expect(summary).toBe(
      "Ana showed me the Lisbon garden project. The garden project in Lisbon needs funding from Ana's team.",
    );
  });

  test("identical sentences count once; limits hold; no sentences gives an empty summary", () => {
    expect(extractiveSummary(["Buy milk.", "Buy milk."])).toBe("Buy milk.");
    const long = Array.from({ length: 50 }, (_, i) => `Sentence ${i} mentions the budget review.`);
    const s = extractiveSummary(long, { maxSentences: 3, maxChars: 100 });
    expect(s.length).toBeLessThanOrEqual(100);
    expect(sentences(s).length).toBeLessThanOrEqual(3);
    expect(extractiveSummary([])).toBe("");
    expect(extractiveSummary(["...", "  "])).toBe("");
  });
});

describe("prompts", () => {
  test("ask messages number and date the memories and end with the question", () => {
    const msgs = buildAskMessages("Where is the key?", [
      { id: "1", content: "The spare key is under the mat.", created_at: "2026-03-01T10:00:00.000Z" },
    ]);
    expect(msgs[0]!.role).toBe("system");
    expect(msgs[1]).toEqual({
      role: "user",
      content: "Memories:\n[1] (2026-03-01) The spare key is under the mat.\n\nQuestion: Where is the key?",
    });
    expect(buildAskMessages("x", [])[1]!.content).toContain("no memories matched");
    expect(
      buildSummaryMessages([{ id: "1", content: "a".repeat(5000), created_at: "2026-03-01" }])[1]!.content
        .length,
    ).toBeLessThan(2100);
  });
});
