import { describe, expect, test } from "bun:test";
import {
  createCompromiseExtractor,
  extractEntities,
  MAX_ENTITIES,
} from "../../../../src/vps/graph/extract/compromise-extractor.ts";
import { normalizeEntityName } from "../../../../src/vps/graph/normalize.ts";

const extractor = createCompromiseExtractor();
const typeOf = (text: string, name: string) =>
  extractEntities(text).entities.find((e) => e.name === name)?.type;

describe("normalizeEntityName", () => {
  test.each([
    ["  Ana  LIMA's ", "ana lima"],
    ["São Paulo", "sao paulo"],
    ["Paris;", "paris"],
    ['"Acme"', "acme"],
    ["ＡＢＣ", "abc"],
    ["...", ""],
  ])("%p -> %p", (input, out) => {
    expect(normalizeEntityName(input)).toBe(out);
  });
});

describe("compromise entity extractor", () => {
  test("finds people, places, organisations and topics", async () => {
    const x = await extractor.extract(
      "Had coffee with Ana Lima in Lisbon yesterday. She works at Google now and talked about the garden project.",
    );
    expect(extractor.id).toBe("compromise-v1");
    expect(x.entities).toEqual([
      { name: "Ana Lima", type: "person" },
      { name: "Lisbon", type: "place" },
      { name: "coffee", type: "topic" },
      { name: "Google", type: "organization" },
      { name: "garden project", type: "topic" },
    ]);
  });

  test("relations join entities of the same sentence only, once per pair, in name order", async () => {
    const x = await extractor.extract("Bob Smith called from Paris. Ana Lima visited Berlin.");
    const pairs = x.relations.map((r) => `${r.from}|${r.to}|${r.type}`).sort();
    expect(pairs).toEqual(["Ana Lima|Berlin|co_occurs", "Bob Smith|Paris|co_occurs"]);
    const again = await extractor.extract("Paris is where Bob Smith lives. Bob Smith loves Paris.");
    expect(again.relations).toEqual([{ from: "Bob Smith", to: "Paris", type: "co_occurs" }]);
  });

  test("honorifics are dropped and an entity appears once", () => {
    const x = extractEntities("Dr. Jane Doe visited New York City. Later Jane Doe left New York City.");
    expect(x.entities.filter((e) => e.type !== "topic")).toEqual([
      { name: "Jane Doe", type: "person" },
      { name: "New York City", type: "place" },
    ]);
  });

  test("pronouns, dates, numbers and generic words are not topics; plural heads become singular", () => {
    const names = extractEntities(
      "I met them on Friday, 3 times. The logos need more contrast.",
    ).entities.map((e) => e.name);
    expect(names).toContain("logo");
    expect(names).toContain("contrast");
    for (const n of ["I", "them", "Friday", "3", "times", "time"]) expect(names).not.toContain(n);
  });

  test("every relation names entities of the same answer", () => {
    const x = extractEntities(
      "Sarah from Acme met Tom in Rome about the budget. The budget review with Acme is in Madrid.",
    );
    const names = new Set(x.entities.map((e) => e.name));
    expect(x.relations.length).toBeGreaterThan(0);
    for (const r of x.relations) {
      expect(names.has(r.from)).toBe(true);
      expect(names.has(r.to)).toBe(true);
      expect(r.from).not.toBe(r.to);
    }
    expect(typeOf("Sarah from Acme met Tom in Rome.", "Rome")).toBe("place");
  });

  test("deterministic, and empty or word-less text gives nothing", async () => {
    const text = "Meeting with the design team about the new logo. Remind me to email Sarah.";
    expect(extractEntities(text)).toEqual(extractEntities(text));
    for (const t of ["", "   ", "!!! ???", "12 34"])
      expect(await extractor.extract(t)).toEqual({ entities: [], relations: [] });
  });

  test("caps the entities of one memory", () => {
    const text = Array.from({ length: 80 }, (_, i) => `The widget${i} needs a gadget${i}.`).join(" ");
    expect(extractEntities(text).entities.length).toBeLessThanOrEqual(MAX_ENTITIES);
  });
});
