import { describe, expect, test } from "bun:test";
import { nameFactor, queryNames } from "../../../src/core/names.ts";

describe("queryNames", () => {
  test("capitalised words after the first, lower-cased, without a possessive", () => {
    expect(queryNames("When did Caroline go to the LGBTQ support group?")).toEqual(["caroline", "lgbtq"]);
    expect(queryNames("What is Melanie's favourite book?")).toEqual(["melanie"]);
    expect(queryNames("Where did Ana and ana’s friend João travel in May?")).toEqual(["ana", "joão", "may"]);
  });

  test("the first word, lower-case words and stopwords are not names", () => {
    expect(queryNames("Where is the spare key?")).toEqual([]);
    expect(queryNames("Caroline said what?")).toEqual([]);
    expect(queryNames("what did I say? The key")).toEqual([]);
    expect(queryNames("")).toEqual([]);
  });

  test("a capital inside a word does not start a name", () => {
    expect(queryNames("what about iPhone and McDonald")).toEqual(["mcdonald"]);
  });
});

describe("nameFactor", () => {
  test("1 + boost × the share of the names the memory contains, as whole words", () => {
    expect(nameFactor(["caroline", "lgbtq"], "Caroline: I went to an LGBTQ support group", 1)).toBe(2);
    expect(nameFactor(["caroline", "lgbtq"], "Caroline: I went hiking", 1)).toBe(1.5);
    expect(nameFactor(["ana"], "I ate a banana", 1)).toBe(1);
    expect(nameFactor(["ana"], "ANA called", 2)).toBe(3);
  });

  test("no names: no change", () => {
    expect(nameFactor([], "anything")).toBe(1);
  });
});
