import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { fuseScores } from "../../../../src/core/fusion.ts";
import { bytesToVector, vectorToBytes } from "../../../../src/vps/db/vector-bytes.ts";
import { normalize, topKByDot } from "../../../../src/vps/search/vector.ts";

describe("fuseScores", () => {
  const list = (...xs: [string, number][]) => xs.map(([id, score]) => ({ id, score }));

  test("weighted sum of the keyword score over the best one and the min-max scaled similarity", () => {
    const fused = fuseScores(list(["a", 10], ["b", 5]), list(["c", 0.9], ["b", 0.8], ["d", 0.5]));
    const expected = { a: 0.7, b: 0.7 * 0.5 + 0.3 * 0.75, c: 0.3, d: 0 };
    for (const h of fused) expect(h.score).toBeCloseTo(expected[h.id as keyof typeof expected], 12);
    expect(fused.map((h) => h.id)).toEqual(["a", "b", "c", "d"]);
    expect(fused.find((h) => h.id === "b")!.ranks).toEqual([2, 2]);
    expect(fused.find((h) => h.id === "c")!.ranks).toEqual([null, 1]);
  });

  test("ties keep keyword then vector order; limit cuts; an empty list leaves the other's order", () => {
    expect(fuseScores(list(["x", 1]), list(["y", 1])).map((h) => h.id)).toEqual(["x", "y"]);
    expect(fuseScores(list(["a", 3], ["b", 2], ["c", 1]), [], { limit: 2 }).map((h) => h.id)).toEqual([
      "a",
      "b",
    ]);
    expect(fuseScores([], list(["q", 0.9], ["p", 0.2])).map((h) => h.id)).toEqual(["q", "p"]);
    expect(fuseScores([], [])).toEqual([]);
    expect(fuseScores(list(["a", 2], ["a", 1]), []).map((h) => h.score)).toEqual([0.7]);
  });

  test("on a constructed table of queries it never recalls less than its better part", () => {
    // Each query: the relevant ids, the keyword list and the vector list. Keywords are sure where
    // a rare word matched (a wide margin) and unsure where only common words did; the vectors
    // find paraphrases that the keywords miss.
    const table = [
      {
        rel: ["k1"],
        kw: list(["k1", 9], ["x1", 2], ["x2", 1.9]),
        vec: list(["x3", 0.7], ["x1", 0.69], ["k1", 0.6]),
      },
      {
        rel: ["s1"],
        kw: list(["x1", 2.1], ["x2", 2], ["s1", 1.9]),
        vec: list(["s1", 0.9], ["x4", 0.5], ["x1", 0.45]),
      },
      { rel: ["s2"], kw: list(["x1", 3], ["x2", 2.9]), vec: list(["s2", 0.8], ["x2", 0.6], ["x1", 0.3]) },
      { rel: ["b1"], kw: list(["b1", 4], ["x1", 3.9]), vec: list(["b1", 0.8], ["x3", 0.75], ["x1", 0.2]) },
    ];
    const recall = (ranked: string[], rel: string[], k: number) =>
      rel.filter((r) => ranked.slice(0, k).includes(r)).length / rel.length;
    for (const k of [1, 2]) {
      let kwR = 0;
      let vecR = 0;
      let fusedR = 0;
      for (const q of table) {
        kwR += recall(
          q.kw.map((h) => h.id),
          q.rel,
          k,
        );
        vecR += recall(
          q.vec.map((h) => h.id),
          q.rel,
          k,
        );
        fusedR += recall(
          fuseScores(q.kw, q.vec).map((h) => h.id),
          q.rel,
          k,
        );
      }
      expect(fusedR).toBeGreaterThanOrEqual(Math.max(kwR, vecR));
      if (k === 1) expect(fusedR).toBeGreaterThan(Math.min(kwR, vecR));
    }
  });
});

describe("vectors", () => {
  test("float32 bytes round-trip", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { maxLength: 64 }), (v) => {
        const back = bytesToVector(vectorToBytes(v));
        expect([...back]).toEqual(v.map((x) => Math.fround(x)));
      }),
    );
    expect(() => bytesToVector(new Uint8Array(5))).toThrow("multiple of 4");
    // A view into a larger buffer decodes only its own bytes.
    const big = new Uint8Array(12);
    big.set(vectorToBytes([1.5]), 4);
    expect([...bytesToVector(big.subarray(4, 8))]).toEqual([1.5]);
  });

  test("topKByDot answers the k best, best first, like a full sort", () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.integer({ min: -5, max: 5 }), { minLength: 3, maxLength: 3 }), {
          maxLength: 40,
        }),
        fc.integer({ min: 0, max: 10 }),
        (vs, k) => {
          const q = [1, 2, 3];
          const cands = vs.map((v, i) => ({ id: `m${String(i).padStart(3, "0")}`, vector: v }));
          const full = cands
            .map((c) => ({ id: c.id, score: c.vector[0]! + 2 * c.vector[1]! + 3 * c.vector[2]! }))
            .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : 1))
            .slice(0, k);
          expect(topKByDot(q, cands, k)).toEqual(full);
        },
      ),
    );
  });

  test("skips vectors of another length and those under minScore; normalize makes unit length", () => {
    const r = topKByDot(
      [1, 0],
      [
        { id: "a", vector: [1, 0, 0] },
        { id: "b", vector: [0.5, 0] },
        { id: "c", vector: [0.1, 0] },
      ],
      5,
      0.2,
    );
    expect(r).toEqual([{ id: "b", score: 0.5 }]);
    expect(Math.hypot(...normalize([3, 4]))).toBeCloseTo(1, 12);
    expect(normalize([0, 0])).toEqual([0, 0]);
  });
});
