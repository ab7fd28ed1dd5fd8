import { describe, expect, test } from "bun:test";
import { boostWindow, inWindow, readTime, timeRecall } from "../../../src/core/time-query.ts";

/** Monday 30 November 2026, 04:00 UTC. */
const NOW = new Date("2026-11-30T04:00:00.000Z");
const day = (d: string) => `${d}T00:00:00.000Z`;

/** query → [phrase, since day, until day, rest] (days at 00:00 UTC). */
const CASES: [string, string, string, string, string][] = [
  // absolute days, the common English forms
  [
    "What dish did Nate make on 9 November, 2022?",
    "on 9 November, 2022",
    "2022-11-09",
    "2022-11-10",
    "What dish did Nate make?",
  ],
  ["on 9th November 2022", "on 9th November 2022", "2022-11-09", "2022-11-10", ""],
  ["the 9th of November, 2022 party", "the 9th of November, 2022", "2022-11-09", "2022-11-10", "party"],
  ["November 9, 2022", "November 9, 2022", "2022-11-09", "2022-11-10", ""],
  ["Nov 9th 2022", "Nov 9th 2022", "2022-11-09", "2022-11-10", ""],
  [
    "forest picture on December 1,2023 taken",
    "on December 1,2023",
    "2023-12-01",
    "2023-12-02",
    "forest picture taken",
  ],
  ["notes 2023-05-08", "2023-05-08", "2023-05-08", "2023-05-09", "notes"],
  ["on 8th December, 2023", "on 8th December, 2023", "2023-12-08", "2023-12-09", ""],
  // a day without a year: the latest such day not after today
  ["on Aug 15th", "on Aug 15th", "2026-08-15", "2026-08-16", ""],
  ["on December 25", "on December 25", "2025-12-25", "2025-12-26", ""],
  // leap years
  ["on 29 February 2024", "on 29 February 2024", "2024-02-29", "2024-03-01", ""],
  ["on 29 February", "on 29 February", "2024-02-29", "2024-03-01", ""],
  // month of a year, year
  [
    "What did Maria donate in December 2023?",
    "in December 2023",
    "2023-12-01",
    "2024-01-01",
    "What did Maria donate?",
  ],
  ["May, 2023 trip", "May, 2023", "2023-05-01", "2023-06-01", "trip"],
  ["as of December 2023", "of December 2023", "2023-12-01", "2024-01-01", "as"],
  ["injury in 2023", "in 2023", "2023-01-01", "2024-01-01", "injury"],
  // a month alone: the latest not after now; `last` is before this month
  [
    "Which spot did Joanna visit in May?",
    "in May",
    "2026-05-01",
    "2026-06-01",
    "Which spot did Joanna visit?",
  ],
  ["a deal in December", "in December", "2025-12-01", "2026-01-01", "a deal"],
  ["in November", "in November", "2026-11-01", "2026-12-01", ""],
  ["last November", "last November", "2025-11-01", "2025-12-01", ""],
  ["this March", "this March", "2026-03-01", "2026-04-01", ""],
  ["camping in June", "in June", "2026-06-01", "2026-07-01", "camping"],
  ["June camping", "June", "2026-06-01", "2026-07-01", "camping"],
  // relative days
  ["what happened yesterday", "yesterday", "2026-11-29", "2026-11-30", "what happened"],
  ["today", "today", "2026-11-30", "2026-12-01", ""],
  ["the day before yesterday", "the day before yesterday", "2026-11-28", "2026-11-29", ""],
  ["two days ago", "two days ago", "2026-11-28", "2026-11-29", ""],
  ["3 days ago", "3 days ago", "2026-11-27", "2026-11-28", ""],
  ["twelve days ago", "twelve days ago", "2026-11-18", "2026-11-19", ""],
  // weeks (Monday to Sunday), weekends, months, years
  ["last week", "last week", "2026-11-23", "2026-11-30", ""],
  ["this week", "this week", "2026-11-30", "2026-12-07", ""],
  ["a week ago", "a week ago", "2026-11-23", "2026-11-30", ""],
  ["the past week", "the past week", "2026-11-24", "2026-12-01", ""],
  ["in the past 3 days", "in the past 3 days", "2026-11-28", "2026-12-01", ""],
  ["last weekend", "last weekend", "2026-11-28", "2026-11-30", ""],
  ["last month", "last month", "2026-10-01", "2026-11-01", ""],
  ["this month", "this month", "2026-11-01", "2026-12-01", ""],
  ["two months ago", "two months ago", "2026-09-01", "2026-10-01", ""],
  ["last year", "last year", "2025-01-01", "2026-01-01", ""],
  ["4 years ago", "4 years ago", "2022-01-01", "2023-01-01", ""],
  ["last Friday", "last Friday", "2026-11-27", "2026-11-28", ""],
  ["on Monday", "on Monday", "2026-11-30", "2026-12-01", ""],
  ["last Monday", "last Monday", "2026-11-23", "2026-11-24", ""],
  // relative to a date
  ["the week before August 3, 2023", "the week before August 3, 2023", "2023-07-27", "2023-08-03", ""],
  ["the weekend before August 3, 2023", "the weekend before August 3, 2023", "2023-07-29", "2023-07-31", ""],
  ["the day after 9 November 2022", "the day after 9 November 2022", "2022-11-10", "2022-11-11", ""],
  ["the week of 9 November 2022", "the week of 9 November 2022", "2022-11-07", "2022-11-14", ""],
  ["two weeks before August 11, 2023", "two weeks before August 11, 2023", "2023-07-28", "2023-07-29", ""],
  [
    "on the Sunday before October 25, 2022",
    "the Sunday before October 25, 2022",
    "2022-10-23",
    "2022-10-24",
    "on",
  ],
  [
    "between August 11 and August 15 2023",
    "between August 11 and August 15 2023",
    "2023-08-11",
    "2023-08-16",
    "",
  ],
  ["between 1 May and 10 May 2023", "between 1 May and 10 May 2023", "2023-05-01", "2023-05-11", ""],
  ["from March 2023 to May 2023", "from March 2023 to May 2023", "2023-03-01", "2023-06-01", ""],
  ["since March 2026", "since March 2026", "2026-03-01", "2026-12-01", ""],
  // an absolute date wins over a phrase relative to now
  [
    "What did Joanna finish last Friday on 23 January, 2022?",
    "on 23 January, 2022",
    "2022-01-23",
    "2022-01-24",
    "What did Joanna finish last Friday?",
  ],
  // an invalid day names its month only; the day number stays a word
  ["31 February 2023", "February 2023", "2023-02-01", "2023-03-01", "31"],
  ["on 30 February", "February", "2026-02-01", "2026-03-01", "on 30"],
];

describe("readTime", () => {
  test.each(CASES)("%p", (query, phrase, since, until, rest) => {
    expect(readTime(query, NOW)).toEqual({ phrase, since: day(since), until: day(until), rest });
  });

  test.each([
    "May I ask what happened?",
    "what may happen next",
    "the march in the city",
    "recently",
    "what did we say lately",
    "room 2023",
    "",
  ])("no time in %p", (query) => {
    expect(readTime(query, NOW)).toBeUndefined();
  });

  test("last month in January is December of the year before", () => {
    const jan = new Date("2027-01-15T12:00:00Z");
    expect(readTime("last month", jan)).toMatchObject({ since: day("2026-12-01"), until: day("2027-01-01") });
    expect(readTime("last year", jan)).toMatchObject({ since: day("2026-01-01"), until: day("2027-01-01") });
    expect(readTime("in December", jan)).toMatchObject({
      since: day("2026-12-01"),
      until: day("2027-01-01"),
    });
    expect(readTime("last week", new Date("2027-01-04T09:00:00Z"))).toMatchObject({
      since: day("2026-12-28"),
      until: day("2027-01-04"),
    });
  });

  test("a month ago from 31 March is in February (no overflow into March)", () => {
    expect(readTime("the past month", new Date("2027-03-31T12:00:00Z"))).toMatchObject({
      since: day("2027-03-01"),
      until: day("2027-04-01"),
    });
    expect(readTime("the past month", new Date("2027-03-30T12:00:00Z"))).toMatchObject({
      since: day("2027-03-01"),
    });
  });

  test("the words are read in the calendar of the given offset", () => {
    // 23:30 UTC on the 29th is already the 30th at UTC+2: yesterday is the 29th there.
    const late = new Date("2026-11-29T23:30:00Z");
    expect(readTime("yesterday", late)).toMatchObject({ since: day("2026-11-28"), until: day("2026-11-29") });
    expect(readTime("yesterday", late, { offsetMinutes: 120 })).toMatchObject({
      since: "2026-11-28T22:00:00.000Z",
      until: "2026-11-29T22:00:00.000Z",
    });
  });

  test("an invalid clock reads nothing", () => {
    expect(readTime("yesterday", new Date(Number.NaN))).toBeUndefined();
  });
});

describe("time windows in recall", () => {
  const w = { since: day("2023-05-01"), until: day("2023-06-01") };

  test("inWindow is [since, until), and any offset is an instant", () => {
    expect(inWindow("2023-05-01T00:00:00.000Z", w)).toBe(true);
    expect(inWindow("2023-05-31T23:59:59.999Z", w)).toBe(true);
    expect(inWindow("2023-06-01T00:00:00.000Z", w)).toBe(false);
    expect(inWindow("2023-06-01T01:00:00+02:00", w)).toBe(true);
    expect(inWindow(null, w)).toBe(false);
  });

  test("timeRecall: none for off or no reading", () => {
    const r = readTime("in May 2023", NOW);
    expect(timeRecall(r, "off")).toBeUndefined();
    expect(timeRecall(undefined, "boost")).toBeUndefined();
    expect(timeRecall(r, "filter")).toEqual({ use: "filter", window: w, rest: "" });
  });

  test("boostWindow ranks the window's hits higher, adds the window's own candidates, keeps the limit", () => {
    const hit = (id: string, score: number, at: string) => ({ id, score, at });
    const all = [
      hit("a", 10, day("2024-01-01")),
      hit("b", 6, day("2023-05-02")),
      hit("c", 5, day("2022-01-01")),
    ];
    const within = [hit("b", 6, day("2023-05-02")), hit("d", 1, day("2023-05-20"))];
    const out = boostWindow(all, within, {
      key: (h) => h.id,
      at: (h) => h.at,
      window: w,
      limit: 3,
      factor: 2,
    });
    expect(out.map((h) => [h.id, h.score])).toEqual([
      ["b", 12],
      ["a", 10],
      ["c", 5],
    ]);
    const more = boostWindow(all, within, {
      key: (h) => h.id,
      at: (h) => h.at,
      window: w,
      limit: 10,
      factor: 6,
    });
    expect(more.map((h) => h.id)).toEqual(["b", "a", "d", "c"]);
  });
});
