import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { bytesToVector, vectorToBytes } from "../../../../src/vps/db/vector-bytes.ts";
import { reciprocalRankFusion } from "../../../../src/vps/search/fusion.ts";
import { normalize, topKByDot } from "../../../../src/vps/search/vector.ts";

describe("reciprocalRankFusion", () => {
  test("documents in both lists beat documents in one; scores are sums of 1/(k+rank)", () => {
    const fused = reciprocalRankFusion([
      ["a", "b", "c"],
      ["c", "d", "a"],
    ]);
    expect(fused.map((h) => h.id)).toEqual(["a", "c", "b", "d"]);
    expect(fused[0]!.score).toBeCloseTo(1 / 61 + 1 / 63, 12);
    expect(fused[0]!.ranks).toEqual([1, 3]);
    expect(fused.find((h) => h.id === "d")!.ranks).toEqual([null, 2]);
  });

  test("ties keep the order of first appearance; limit cuts; empty input is empty", () => {
    expect(reciprocalRankFusion([["x"], ["y"]]).map((h) => h.id)).toEqual(["x", "y"]);
    expect(reciprocalRankFusion([["a", "b", "c"]], { limit: 2 }).map((h) => h.id)).toEqual(["a", "b"]);
    expect(reciprocalRankFusion([])).toEqual([]);
    expect(reciprocalRankFusion([["a", "a"]])[0]!.score).toBeCloseTo(1 / 61, 12);
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
