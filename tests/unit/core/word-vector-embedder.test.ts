import { describe, expect, test } from "bun:test";
import { cosine } from "../../../src/core/embedding/builtin-embedder.ts";
import {
  createWordVectorEmbedder,
  knownWords,
  wordVectorEmbed,
} from "../../../src/core/embedding/word-vector-embedder.ts";

describe("built-in word-vector embedder", () => {
  const embedder = createWordVectorEmbedder();

  test("id and dimensions; one unit vector per text, in order; the same text gives the same vector", async () => {
    expect(embedder.id).toBe("builtin-words-v1/100");
    expect(embedder.dimensions).toBe(100);
    const [a, b, a2] = await embedder.embed([
      "We adopted a puppy",
      "The train was late",
      "We adopted a puppy",
    ]);
    expect(a).toHaveLength(100);
    expect(a2).toEqual(a!);
    expect(b).not.toEqual(a!);
    expect(Math.hypot(...a!)).toBeCloseTo(1, 6);
    expect(await embedder.embed([])).toEqual([]);
  });

  test("related sentences without a shared word are closer than unrelated ones", () => {
    const q = wordVectorEmbed("my dog loves long walks");
    const related = wordVectorEmbed("the puppy enjoys going for a stroll");
    const unrelated = wordVectorEmbed("quarterly tax returns are due");
    expect(cosine(q, related)).toBeGreaterThan(cosine(q, unrelated) + 0.1);
    const job = wordVectorEmbed("she started a new job");
    expect(cosine(job, wordVectorEmbed("her career at the company"))).toBeGreaterThan(
      cosine(job, wordVectorEmbed("the soup was too salty")),
    );
  });

  test("common words weigh little; case, accents and plurals are normalised", () => {
    const base = wordVectorEmbed("painting sunsets");
    expect(cosine(base, wordVectorEmbed("the painting of the sunsets"))).toBeGreaterThan(0.95);
    expect(wordVectorEmbed("PAINTING Sunsets")).toEqual(base);
    expect(knownWords("café hikes")).toBe(2);
  });

  test("a text without known words is the zero vector", () => {
    const zero = wordVectorEmbed("zqxjv 🙂 !!");
    expect(zero).toHaveLength(100);
    expect(zero.every((x) => x === 0)).toBe(true);
    expect(wordVectorEmbed("")).toEqual(zero);
  });
});
