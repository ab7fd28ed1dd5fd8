import { describe, expect, test } from "bun:test";
import { cosine, createBuiltinEmbedder, hashEmbed } from "../../../src/core/embedding/builtin-embedder.ts";

const embedder = createBuiltinEmbedder();
const sim = async (a: string, b: string) => {
  const [x, y] = await embedder.embed([a, b]);
  return cosine(x!, y!);
};

describe("built-in embedder", () => {
  test("has a stable id and 384 dimensions by default; vectors are unit length", async () => {
    expect(embedder.id).toBe("builtin-hash-v1/384");
    expect(embedder.dimensions).toBe(384);
    const [v] = await embedder.embed(["Coffee with Ana in Lisbon"]);
    expect(v).toHaveLength(384);
    expect(Math.hypot(...v!)).toBeCloseTo(1, 10);
  });

  test("is deterministic across instances and calls", async () => {
    const text = "Planted tomatoes in the garden";
    const [a] = await embedder.embed([text]);
    const [b] = await createBuiltinEmbedder().embed([text]);
    expect(b).toEqual(a!);
    expect(hashEmbed(text, 384)).toEqual(a!);
  });

  test("identical texts score 1; case and accents do not matter", async () => {
    expect(await sim("Met Ana at the café", "Met Ana at the café")).toBeCloseTo(1, 10);
    expect(await sim("Met Ana at the café", "met ANA at the cafe")).toBeCloseTo(1, 10);
  });

  test("related texts score higher than unrelated ones", async () => {
    const q = "meeting with the design team about the new logo";
    const related = await sim(q, "the design team meetings: logo drafts reviewed");
    const unrelated = await sim(q, "bought tomatoes and basil at the market");
    expect(related).toBeGreaterThan(unrelated);
    expect(related).toBeGreaterThan(0.3);
    expect(unrelated).toBeLessThan(0.15);
  });

  test("word parts count: plurals and inflections are closer than unrelated words", async () => {
    expect(await sim("dentist appointments", "appointment at the dentist")).toBeGreaterThan(
      await sim("dentist appointments", "holiday in Portugal"),
    );
  });

  test("local word order counts: the same words in the same order score higher", async () => {
    const q = "ana called bob";
    expect(await sim(q, "ana called bob yesterday")).toBeGreaterThan(
      await sim(q, "bob called ana yesterday"),
    );
  });

  test("does not capture meaning: synonyms score as unrelated", async () => {
    expect(await sim("car", "automobile")).toBeLessThan(0.2);
  });

  test("a text without words gives a zero vector; an empty list gives an empty list", async () => {
    const [v] = await embedder.embed(["  *** !!! "]);
    expect(v!.every((x) => x === 0)).toBe(true);
    expect(await embedder.embed([])).toEqual([]);
  });

  test("other sizes work and bad sizes are refused", async () => {
    const small = createBuiltinEmbedder({ dimensions: 64 });
    expect(small.id).toBe("builtin-hash-v1/64");
    expect((await small.embed(["x y z"]))[0]).toHaveLength(64);
    expect(() => createBuiltinEmbedder({ dimensions: 0 })).toThrow("dimensions");
    expect(() => createBuiltinEmbedder({ dimensions: 10.5 })).toThrow("dimensions");
  });

  test("non-Latin text and emoji embed without error", async () => {
    expect(await sim("東京の天気", "東京の天気")).toBeCloseTo(1, 10);
    expect(await sim("東京の天気", "大阪の食べ物")).toBeLessThan(await sim("東京の天気", "東京の天気予報"));
    const [v] = await embedder.embed(["🍕🎉 pizza party"]);
    expect(Math.hypot(...v!)).toBeCloseTo(1, 10);
  });
});
