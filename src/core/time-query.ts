/**
 * Time in questions: reading the time a query names ("yesterday", "last week", "in May",
 * "two days ago", "on 9 November, 2022", "in 2023", "the week before August 3, 2023",
 * "between 1 May and 10 May 2023") as a window of instants `[since, until)`, so that recall can
 * rank the memories of that time higher (boost) or keep only them (filter), by `occurred_at`
 * and, where a memory has none, `created_at`.
 *
 * Pure: the caller passes `now` and the time zone offset of the calendar the words are read in
 * (minutes east of UTC; the edge and the VPS read them in UTC). Calendar weeks start on Monday.
 *
 * What is read (case-insensitive; the first phrase in the query wins, a longer one over a
 * shorter at the same place):
 * - a day: `9 November 2022`, `9th of November, 2022`, `November 9, 2022`, `Nov 9th 2022`,
 *   `December 1,2023`, `2022-11-09`; without a year, the latest such day not after today;
 * - a month: `May 2023`, `May, 2023`; a month alone only as a full name (`in May`, `June`),
 *   and `May` and `March` (also words) only after `in`, `during`, `last`, `this`, `early`,
 *   `mid`, `late`, `since`, `until`, `before`, `after`, `of`, `by`: the latest such month not after
 *   now (`last May`: the one before the current month);
 * - a year after `in`, `during`, `throughout`, `of`, `since`: `in 2023`;
 * - `today`, `tonight`, `this morning|afternoon|evening`, `yesterday`, `the day before yesterday`;
 * - `this|last|past|previous week|weekend|month|year`, `the past|last N days|weeks|months`;
 * - `on|last|this Friday` (a weekday): the latest one (`last`: before today);
 * - `N days|weeks|months|years ago` (digits, `a`/`an`, `a couple of`, `a few`, `one`..`twelve`);
 * - `the day|week|weekend|month before|after|of <date>`, `between|from <date> and|to <date>`;
 * - `since <date>`: from the date until now.
 *
 * Not a window: vague words such as `recently` or `lately`, `may` the verb, `march` the noun.
 * An invalid day (`31 February 2023`) names its month only, and its number stays a word. When a
 * query names several times, a phrase with a year wins over one relative to now ("last Friday,
 * as mentioned on 23 January, 2022" reads as 23 January 2022), then the earliest, then the
 * longest. The phrase found is taken out of the query (`rest`), so its words ("May", "2023",
 * "9") stop counting as keywords.
 */

export interface TimeWindow {
  /** ISO 8601 instant (UTC), inclusive. */
  since: string;
  /** ISO 8601 instant (UTC), exclusive. */
  until: string;
}

export interface TimeReading extends TimeWindow {
  /** The words of the query that named the time, as written. */
  phrase: string;
  /** The query without the phrase. */
  rest: string;
}

export interface ReadTimeOptions {
  /** Minutes east of UTC of the calendar the words are read in (0: UTC). */
  offsetMinutes?: number;
}

const DAY_MS = 86_400_000;

const MONTH_NAMES: Record<string, number> = {
  january: 1,
  jan: 1,
  february: 2,
  feb: 2,
  march: 3,
  mar: 3,
  april: 4,
  apr: 4,
  may: 5,
  june: 6,
  jun: 6,
  july: 7,
  jul: 7,
  august: 8,
  aug: 8,
  september: 9,
  sept: 9,
  sep: 9,
  october: 10,
  oct: 10,
  november: 11,
  nov: 11,
  december: 12,
  dec: 12,
};
const WEEKDAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const NUMBER_WORDS: Record<string, number> = {
  a: 1,
  an: 1,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  "a couple of": 2,
  couple: 2,
  "a few": 3,
  few: 3,
  several: 3,
};

// ---- patterns ------------------------------------------------------------------------------

const FULL_MONTH =
  "(?:january|february|march|april|may|june|july|august|september|october|november|december)";
/** A month by name or abbreviation (an abbreviation may end with a dot). */
const MONTH =
  "(?:january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\\b\\.?";
const DAY = "\\d{1,2}(?:st|nd|rd|th)?(?![\\d:])";
const YEAR = "(?:1[89]|20)\\d{2}(?!\\d)";
const ISO_DATE = "(?:1[89]|20)\\d{2}-\\d{2}-\\d{2}(?!\\d)";
/** A day: `9 November 2022`, `9th of Nov, 2022`, `November 9, 2022`, `December 1,2023`, `2022-11-09`. */
const DAY_DATE = `(?:${ISO_DATE}|${DAY}\\s+(?:of\\s+)?${MONTH}(?:\\s*,?\\s*${YEAR})?|${MONTH}\\s+${DAY}(?:\\s*,?\\s*${YEAR})?)`;
const MONTH_YEAR = `(?:${MONTH}\\s*,?\\s*(?:of\\s+)?${YEAR})`;
/** Any date a phrase can be built on: a day, a month of a year, a month, a year. */
const ANY_DATE = `(?:${DAY_DATE}|${MONTH_YEAR}|${FULL_MONTH}\\b|${YEAR})`;
const COUNT =
  "(?:\\d{1,3}|a couple of|couple|a few|few|several|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)";
const WEEKDAY = "(?:sunday|monday|tuesday|wednesday|thursday|friday|saturday)";
const MONTH_CONTEXT = "(?:in|during|last|this|early|mid|late|since|of)";

// ---- calendar ------------------------------------------------------------------------------

/** A calendar day as a day number (days since 1970-01-01). */
type Day = number;
const dayOf = (y: number, m: number, d: number): Day => Date.UTC(y, m - 1, d) / DAY_MS;
const ymd = (day: Day) => {
  const t = new Date(day * DAY_MS);
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate(), wd: t.getUTCDay() };
};
/** A valid calendar day (31 February is not). */
function validDay(y: number, m: number, d: number): Day | undefined {
  if (m < 1 || m > 12 || d < 1 || d > 31) return undefined;
  const day = dayOf(y, m, d);
  const back = ymd(day);
  return back.y === y && back.m === m && back.d === d ? day : undefined;
}
/** Monday of the week of `day`. */
const mondayOf = (day: Day) => day - ((ymd(day).wd + 6) % 7);

/** A span of days [from, to). */
interface Span {
  from: Day;
  to: Day;
}
const monthSpan = (y: number, m: number): Span => ({ from: dayOf(y, m, 1), to: dayOf(y, m + 1, 1) });
const yearSpan = (y: number): Span => ({ from: dayOf(y, 1, 1), to: dayOf(y + 1, 1, 1) });

interface Ctx {
  /** Today in the calendar the words are read in. */
  today: Day;
}

/** A parsed date: its span, and whether it named its year (for `between May 3 and May 10, 2023`). */
interface DateSpan extends Span {
  hasYear: boolean;
  /** For a day or month named without a year: the span in a given year. */
  inYear?: (y: number) => Span | undefined;
}

/** The latest of `inYear(y)` for y = this year, last year… whose start is not after today. */
function latest(ctx: Ctx, inYear: (y: number) => Span | undefined): Span | undefined {
  const y0 = ymd(ctx.today).y;
  for (let y = y0; y >= y0 - 8; y--) {
    const s = inYear(y);
    if (s && s.from <= ctx.today) return s;
  }
  return undefined;
}

/** The span a date text names (one matched by {@link ANY_DATE}), or undefined when invalid. */
function parseDate(text: string, ctx: Ctx): DateSpan | undefined {
  const t = text.toLowerCase();
  const iso = /^(\d{4})-(\d{2})-(\d{2})$/.exec(t);
  if (iso) {
    const day = validDay(Number(iso[1]), Number(iso[2]), Number(iso[3]));
    return day === undefined ? undefined : { from: day, to: day + 1, hasYear: true };
  }
  const monthWord = /[a-z]+/.exec(
    t.replace(/\b(?:st|nd|rd|th|of)\b/g, " ").replace(/\d+(st|nd|rd|th)\b/g, "0"),
  );
  const month = monthWord ? MONTH_NAMES[monthWord[0]] : undefined;
  const numbers = [...t.matchAll(/\d+/g)].map((m) => m[0]);
  const year = numbers.find((n) => n.length === 4);
  const day = numbers.find((n) => n.length <= 2);
  if (month === undefined) {
    if (year === undefined) return undefined;
    return { ...yearSpan(Number(year)), hasYear: true };
  }
  if (day !== undefined) {
    const inYear = (y: number): Span | undefined => {
      const d = validDay(y, month, Number(day));
      return d === undefined ? undefined : { from: d, to: d + 1 };
    };
    if (year !== undefined) {
      const s = inYear(Number(year));
      return s && { ...s, hasYear: true };
    }
    // 29 February without a year: the latest leap year's.
    const s = latest(ctx, inYear);
    return s && { ...s, hasYear: false, inYear };
  }
  const inYear = (y: number) => monthSpan(y, month);
  if (year !== undefined) return { ...inYear(Number(year)), hasYear: true };
  const s = latest(ctx, inYear);
  return s && { ...s, hasYear: false, inYear };
}

// ---- rules ---------------------------------------------------------------------------------

/** A rule: a pattern and the span of days its match names. */
interface Rule {
  re: RegExp;
  span: (m: RegExpExecArray, ctx: Ctx) => Span | undefined;
  /** Whether the match names its time without reference to now (a date with its year): such a
   * phrase is preferred over one relative to now ("last Friday, as mentioned on 23 January,
   * 2022" reads as 23 January 2022). */
  absolute: (m: RegExpExecArray) => boolean;
}

/** Whether a text names a year. */
const namesYear = (text: string) => /\d{4}/.test(text);
const rule = (
  source: string,
  span: Rule["span"],
  absolute: Rule["absolute"] = (m) => namesYear(m[0]),
): Rule => ({ re: new RegExp(source, "gi"), span, absolute });

function count(word: string): number | undefined {
  const w = word.toLowerCase().replace(/\s+/g, " ");
  return /^\d+$/.test(w) ? Number(w) : NUMBER_WORDS[w];
}

/** The day, week (Monday to Sunday), weekend, month or year that holds `anchor`. */
function unitSpan(unit: string, anchor: Day): Span {
  const u = unit.toLowerCase().replace(/s$/, "");
  const { y, m } = ymd(anchor);
  if (u === "day") return { from: anchor, to: anchor + 1 };
  if (u === "week") return { from: mondayOf(anchor), to: mondayOf(anchor) + 7 };
  if (u === "month") return monthSpan(y, m);
  if (u === "weekend") {
    const sat = mondayOf(anchor) + 5;
    return { from: sat, to: sat + 2 };
  }
  return yearSpan(y);
}

/** `day` moved by `n` units (negative: back). */
function shift(day: Day, unit: string, n: number): Day {
  const u = unit.toLowerCase().replace(/s$/, "");
  const { y, m, d } = ymd(day);
  if (u === "day") return day + n;
  if (u === "week") return day + 7 * n;
  if (u === "month") return dayOf(y, m + n, Math.min(d, ymd(dayOf(y, m + n + 1, 0)).d));
  return dayOf(y + n, m, Math.min(d, ymd(dayOf(y + n, m + 1, 0)).d));
}

/** The Saturday and Sunday before the day `from` (whose Sunday is before it). */
function weekendBefore(from: Day): Span {
  const eve = from - 1;
  let sat = eve - ((ymd(eve).wd + 1) % 7);
  if (sat + 1 >= from) sat -= 7;
  return { from: sat, to: sat + 2 };
}

const RULES: Rule[] = [
  // between <date> and <date>
  rule(`\\b(?:between|from)\\s+(${ANY_DATE})\\s+(?:and|to|until|till|through)\\s+(${ANY_DATE})`, (m, ctx) => {
    let a = parseDate(m[1]!, ctx);
    const b = parseDate(m[2]!, ctx);
    if (!a || !b) return undefined;
    if (!a.hasYear && b.hasYear && a.inYear) a = { ...(a.inYear(ymd(b.from).y) ?? a), hasYear: true };
    if (a.from >= b.to) return undefined;
    return { from: a.from, to: b.to };
  }),
  // the day/week/weekend/month before/after <date>
  rule(
    `\\b(?:the\\s+|last\\s+)?(day|week|weekend|month|year)\\s+(before|after)\\s+(${ANY_DATE})`,
    (m, ctx) => {
      const d = parseDate(m[3]!, ctx);
      if (!d) return undefined;
      const unit = m[1]!.toLowerCase();
      const before = m[2]!.toLowerCase() === "before";
      if (unit === "weekend") {
        if (before) return weekendBefore(d.from);
        const sat = mondayOf(d.to) + 5;
        return { from: sat, to: sat + 2 };
      }
      return before
        ? { from: shift(d.from, unit, -1), to: d.from }
        : { from: d.to, to: shift(d.to, unit, 1) };
    },
  ),
  // the day/week/weekend of <day>
  rule(`\\b(?:the\\s+)?(day|week|weekend)\\s+of\\s+(?:the\\s+)?(${DAY_DATE})`, (m, ctx) => {
    const d = parseDate(m[2]!, ctx);
    return d && unitSpan(m[1]!, d.from);
  }),
  // N days/weeks/months before/after <date>: that day
  rule(`\\b(${COUNT})\\s+(days?|weeks?|months?|years?)\\s+(before|after)\\s+(${ANY_DATE})`, (m, ctx) => {
    const n = count(m[1]!);
    const d = parseDate(m[4]!, ctx);
    if (n === undefined || !d) return undefined;
    const day = m[3]!.toLowerCase() === "before" ? shift(d.from, m[2]!, -n) : shift(d.from, m[2]!, n);
    return { from: day, to: day + 1 };
  }),
  // the Sunday before/after <date>
  rule(`\\b(?:the\\s+)?(${WEEKDAY})\\s+(before|after)\\s+(${ANY_DATE})`, (m, ctx) => {
    const d = parseDate(m[3]!, ctx);
    if (!d) return undefined;
    const wd = WEEKDAYS.indexOf(m[1]!.toLowerCase());
    if (m[2]!.toLowerCase() === "before") {
      const back = (ymd(d.from).wd - wd + 7) % 7 || 7;
      return { from: d.from - back, to: d.from - back + 1 };
    }
    const ahead = (wd - ymd(d.to - 1).wd + 7) % 7 || 7;
    return { from: d.to - 1 + ahead, to: d.to + ahead };
  }),
  // since <date>: until now
  rule(`\\bsince\\s+(${ANY_DATE})`, (m, ctx) => {
    const d = parseDate(m[1]!, ctx);
    return d && d.from <= ctx.today ? { from: d.from, to: ctx.today + 1 } : undefined;
  }),
  // a day
  rule(`\\b(?:on\\s+|in\\s+|during\\s+)?(?:the\\s+)?(${DAY_DATE})`, (m, ctx) => parseDate(m[1]!, ctx)),
  // a month of a year
  rule(`\\b(?:in\\s+|during\\s+|of\\s+)?(?:early\\s+|mid-?\\s*|late\\s+)?(${MONTH_YEAR})`, (m, ctx) =>
    parseDate(m[1]!, ctx),
  ),
  // a year
  rule(`\\b(?:in|during|throughout|of)\\s+(?:the\\s+year\\s+)?(${YEAR})`, (m, ctx) => parseDate(m[1]!, ctx)),
  // a month alone: `last May` is the one before this month
  rule(`\\b(${MONTH_CONTEXT})\\s+(?:early\\s+|mid-?\\s*|late\\s+)?(${FULL_MONTH})\\b`, (m, ctx) => {
    const month = MONTH_NAMES[m[2]!.toLowerCase()]!;
    const now = ymd(ctx.today);
    const ctxWord = m[1]!.toLowerCase();
    if (ctxWord === "this") return monthSpan(now.y, month);
    if (ctxWord === "last") return monthSpan(month < now.m ? now.y : now.y - 1, month);
    return monthSpan(month <= now.m ? now.y : now.y - 1, month);
  }),
  rule("\\b(january|february|april|june|july|august|september|october|november|december)\\b", (m, ctx) => {
    const month = MONTH_NAMES[m[1]!.toLowerCase()]!;
    const now = ymd(ctx.today);
    return monthSpan(month <= now.m ? now.y : now.y - 1, month);
  }),
  // today, yesterday
  rule("\\b(?:the\\s+day\\s+before\\s+yesterday)\\b", (_m, ctx) => ({
    from: ctx.today - 2,
    to: ctx.today - 1,
  })),
  rule("\\byesterday\\b", (_m, ctx) => ({ from: ctx.today - 1, to: ctx.today })),
  rule("\\b(?:today|tonight|this\\s+(?:morning|afternoon|evening))\\b", (_m, ctx) => ({
    from: ctx.today,
    to: ctx.today + 1,
  })),
  // the past N days/weeks/months: up to today
  rule(
    `\\b(?:in\\s+|over\\s+|during\\s+)?the\\s+(?:past|last)\\s+(${COUNT})\\s+(days?|weeks?|months?|years?)\\b`,
    (m, ctx) => {
      const n = count(m[1]!);
      if (n === undefined || n < 1) return undefined;
      return { from: shift(ctx.today, m[2]!, -n) + 1, to: ctx.today + 1 };
    },
  ),
  // this/last/past week, weekend, month, year
  rule("\\b(?:the\\s+)?(this|last|past|previous)\\s+(week|weekend|month|year)\\b", (m, ctx) => {
    const which = m[1]!.toLowerCase();
    const unit = m[2]!.toLowerCase();
    if (which === "past") {
      // "the past week": the seven days up to today (the past weekend: the last one).
      if (unit === "weekend") return weekendBefore(ctx.today + 1);
      return { from: shift(ctx.today, unit, -1) + 1, to: ctx.today + 1 };
    }
    const back = which === "this" ? 0 : 1;
    const { y, m: mo } = ymd(ctx.today);
    if (unit === "week") {
      const mon = mondayOf(ctx.today) - 7 * back;
      return { from: mon, to: mon + 7 };
    }
    if (unit === "weekend") {
      const sat = mondayOf(ctx.today) + 5 - 7 * back;
      return { from: sat, to: sat + 2 };
    }
    if (unit === "month") return monthSpan(y, mo - back);
    return yearSpan(y - back);
  }),
  // on/last/this Friday
  rule(`\\b(on|last|this|past|previous)\\s+(${WEEKDAY})\\b`, (m, ctx) => {
    const which = m[1]!.toLowerCase();
    const wd = WEEKDAYS.indexOf(m[2]!.toLowerCase());
    const todayWd = ymd(ctx.today).wd;
    if (which === "this") {
      const day = mondayOf(ctx.today) + ((wd + 6) % 7);
      return { from: day, to: day + 1 };
    }
    let back = (todayWd - wd + 7) % 7;
    if (back === 0 && which !== "on") back = 7;
    return { from: ctx.today - back, to: ctx.today - back + 1 };
  }),
  // N days/weeks/months/years ago
  rule(`\\b(${COUNT})\\s+(days?|weeks?|months?|years?)\\s+ago\\b`, (m, ctx) => {
    const n = count(m[1]!);
    if (n === undefined) return undefined;
    // That day; a week, month or year ago: the calendar week, month or year of that day.
    return unitSpan(m[2]!, shift(ctx.today, m[2]!, -n));
  }),
];

/**
 * The time `query` names, read against `now`, or undefined when it names none. The window is
 * `[since, until)`; `rest` is the query without the phrase (spaces tidied).
 */
export function readTime(query: string, now: Date, options: ReadTimeOptions = {}): TimeReading | undefined {
  const offsetMs = (options.offsetMinutes ?? 0) * 60_000;
  const nowMs = now.getTime();
  if (!Number.isFinite(nowMs)) return undefined;
  const ctx: Ctx = { today: Math.floor((nowMs + offsetMs) / DAY_MS) };
  const text = query.normalize("NFKC");
  let best: { absolute: boolean; index: number; length: number; span: Span } | undefined;
  for (const r of RULES) {
    r.re.lastIndex = 0;
    for (let m = r.re.exec(text); m !== null; m = r.re.exec(text)) {
      // An absolute phrase wins over a relative one; then the earlier; then the longer. A match
      // that names no valid time does not count.
      const absolute = r.absolute(m);
      if (best) {
        const better =
          absolute !== best.absolute
            ? absolute
            : m.index !== best.index
              ? m.index < best.index
              : m[0].length > best.length;
        if (!better) continue;
      }
      const span = r.span(m, ctx);
      if (span && span.to > span.from) best = { absolute, index: m.index, length: m[0].length, span };
    }
  }
  if (!best) return undefined;
  const sinceMs = best.span.from * DAY_MS - offsetMs;
  const untilMs = best.span.to * DAY_MS - offsetMs;
  if (!Number.isFinite(sinceMs) || !Number.isFinite(untilMs)) return undefined;
  const phrase = text.slice(best.index, best.index + best.length);
  const rest = `${text.slice(0, best.index)} ${text.slice(best.index + best.length)}`
    .replace(/\s+([?.!,;:])/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
  return {
    phrase: phrase.trim(),
    since: new Date(sinceMs).toISOString(),
    until: new Date(untilMs).toISOString(),
    rest,
  };
}

/** Whether an instant (ISO 8601) falls in the window. */
export function inWindow(at: string | null | undefined, w: TimeWindow): boolean {
  if (!at) return false;
  const t = Date.parse(at);
  return t >= Date.parse(w.since) && t < Date.parse(w.until);
}

/** The instant a memory is about: when it happened, or else when it was written. */
export const eventTime = (m: { occurred_at?: string | null; created_at: string }): string =>
  m.occurred_at ?? m.created_at;

/** How recall uses the time a query names: rank the memories of that time higher (`boost`, the
 * default), keep only them (`filter`), or ignore it (`off`: the query is read as plain words). */
export type TimeUse = "boost" | "filter" | "off";

/** What a store needs to use a time window: the window, how, and the query without the phrase. */
export interface TimeRecall {
  use: "boost" | "filter";
  window: TimeWindow;
  /** The query without the time phrase (may be empty: then the window's newest memories). */
  rest: string;
}

/** The time reading of `query` as a store's recall takes it, or undefined (none, or `off`). */
export function timeRecall(reading: TimeReading | undefined, use: TimeUse): TimeRecall | undefined {
  if (!reading || use === "off") return undefined;
  return { use, window: { since: reading.since, until: reading.until }, rest: reading.rest };
}

/** A boosted memory's score is multiplied by this. On the LoCoMo dev conversations (questions
 * that name a time, R@10): keyword 62.2 without, 74.0 at 1.5, 77.4 at 2, 78.4 at 3, 79.4 at 5
 * and above (the window first); hybrid 65.3, 75.3, 77.9, 81.0, 79.9. */
export const TIME_BOOST = 3;

/**
 * Boost: the union of a ranking over every memory (`all`) and one over the window's memories only
 * (`within`, so that a memory of that time that matches the words is a candidate even on a large
 * store), each memory of the window scored `factor` times higher, best first, `limit` of them.
 * Both rankings must score on the same scale (higher is better). `limit` of each is enough: a
 * memory outside the window in the answer is in the best `limit` of `all` (boosting only lifts
 * others), and one inside it is in the best `limit` of `within`.
 */
export function boostWindow<H extends { score: number }>(
  all: readonly H[],
  within: readonly H[],
  opts: {
    key: (h: H) => string;
    /** The instant the hit's memory is about (see {@link eventTime}). */
    at: (h: H) => string;
    window: TimeWindow;
    limit: number;
    factor?: number;
  },
): H[] {
  const factor = opts.factor ?? TIME_BOOST;
  const byKey = new Map<string, H>();
  for (const h of [...all, ...within]) {
    const k = opts.key(h);
    const had = byKey.get(k);
    if (!had || had.score < h.score) byKey.set(k, h);
  }
  return [...byKey.values()]
    .map((h, order) => ({
      h,
      order,
      score: !inWindow(opts.at(h), opts.window)
        ? h.score
        : h.score >= 0
          ? h.score * factor
          : h.score / factor,
    }))
    .sort((a, b) => b.score - a.score || a.order - b.order)
    .slice(0, opts.limit)
    .map(({ h, score }) => ({ ...h, score }));
}
