#!/usr/bin/env bun
/**
 * The latency cost of a time in the query (core/time-query.ts) on the edge store at 100,000
 * memories, in process: the same generated queries as bench:recall, each asked plainly and with a
 * time phrase appended — a day, a month, a year (windows holding about 90, 2,700 and 33,000
 * memories), a relative one whose window holds none ("yesterday": the ranking is the plain one,
 * after one indexed probe), and a day with `time: filter` — all interleaved (the starting variant
 * rotates), keyword and hybrid. The time includes reading the phrase. Every memory's occurred_at
 * is spread evenly over 2022–2024 first (memories are written without one).
 *
 *   bun run bench/time-recall.ts                 # 100,000 memories (bench:recall's data, loaded if absent)
 *   bun run bench/time-recall.ts --n 10000 --no-write
 *
 * Adds an entry to the "Time in questions" section of bench/RESULTS.md.
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { readTime, type TimeUse, timeRecall } from "../src/core/time-query.ts";
import { VERSION } from "../src/core/version.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import type { LocalRecallMode } from "../src/edge/store/types.ts";
import { corpus, rng } from "./corpus.ts";
import { appendToSection } from "./results-file.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    queries: { type: "string", default: "1000" },
    "hybrid-queries": { type: "string", default: "300" },
    seed: { type: "string", default: "42" },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const SEED = Number(args.seed);
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const ms = (x: number) => `${x.toFixed(2)} ms`;

// The data: bench:recall's (same path, same seed), loaded here when absent.
const pristine = join(ROOT, "bench/.data", `recall-${N}-s${SEED}`);
if (!existsSync(join(pristine, "bench.json"))) {
  rmSync(pristine, { recursive: true, force: true });
  mkdirSync(pristine, { recursive: true });
  log(`loading ${N} memories (direct store path, one transaction each) ...`);
  const gen = corpus(SEED);
  const store = createSqliteStore({ path: join(pristine, "edge.db") });
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const { content, tags } = gen.memory();
    store.create({ content, tags, kind: "episodic", metadata: {} });
    if (i > 0 && i % 10_000 === 0) log(`  ${i} ...`);
  }
  const seconds = (performance.now() - t0) / 1000;
  store.close();
  writeFileSync(
    join(pristine, "bench.json"),
    JSON.stringify({ n: N, seed: SEED, seconds, rate: N / seconds }),
  );
}
const work = join(ROOT, "bench/.data", "time-run");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const dbFile = join(work, "edge.db");
copyFileSync(join(pristine, "edge.db"), dbFile);

// Every memory happened on a day of 2022–2024, in rowid order (about 91 a day at 100,000).
{
  const db = new Database(dbFile);
  const max = (db.query("SELECT max(rid) AS n FROM memories").get() as { n: number }).n;
  db.run(
    `UPDATE memories SET occurred_at = strftime('%Y-%m-%dT%H:%M:%fZ', '2022-01-01', '+' || ((rid - 1) * 1096.0 / ?) || ' days')`,
    [max],
  );
  db.close();
}
const store = createSqliteStore({ path: dbFile, integrityCheck: false });

const qgen = corpus(SEED + 1);
const r = rng(SEED + 3);
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];
const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
const year = () => 2022 + Math.floor(r() * 3);
const VARIANTS: { key: string; label: string; phrase: () => string; use: TimeUse }[] = [
  { key: "plain", label: "no time phrase", phrase: () => "", use: "boost" },
  {
    key: "day",
    label: "a day (on 9 November, 2023), boost",
    phrase: () => ` on ${1 + Math.floor(r() * 28)} ${pick(MONTHS)}, ${year()}`,
    use: "boost",
  },
  {
    key: "month",
    label: "a month (in May 2023), boost",
    phrase: () => ` in ${pick(MONTHS)} ${year()}`,
    use: "boost",
  },
  { key: "year", label: "a year (in 2023), boost", phrase: () => ` in ${year()}`, use: "boost" },
  { key: "empty", label: "yesterday (no memory in the window)", phrase: () => " yesterday", use: "boost" },
  {
    key: "day-filter",
    label: "a day, filter",
    phrase: () => ` on ${1 + Math.floor(r() * 28)} ${pick(MONTHS)}, ${year()}`,
    use: "filter",
  },
];
const words = Array.from({ length: Number(args.queries) }, () => qgen.query());

function run(mode: LocalRecallMode, count: number) {
  const times = Object.fromEntries(VARIANTS.map((v) => [v.key, [] as number[]]));
  // CPU time of this process per recall: on a shared machine the wall clock also counts the
  // time spent waiting for a core.
  const cpu = Object.fromEntries(VARIANTS.map((v) => [v.key, [] as number[]]));
  const empty = Object.fromEntries(VARIANTS.map((v) => [v.key, 0]));
  words.slice(0, count).forEach((w, i) => {
    for (let j = 0; j < VARIANTS.length; j++) {
      const v = VARIANTS[(i + j) % VARIANTS.length]!;
      const q = `${w}${v.phrase()}`;
      const t0 = performance.now();
      const c0 = process.cpuUsage();
      const time = timeRecall(readTime(q, new Date()), v.use);
      const hits = store.recall(q, 10, undefined, mode, time);
      const c1 = process.cpuUsage(c0);
      times[v.key]!.push(performance.now() - t0);
      cpu[v.key]!.push((c1.user + c1.system) / 1000);
      if (hits.length === 0) empty[v.key]!++;
    }
  });
  for (const v of VARIANTS) {
    times[v.key]!.sort((a, b) => a - b);
    cpu[v.key]!.sort((a, b) => a - b);
  }
  return { times, cpu, empty, count };
}

const load0 = os.loadavg()[0]!;
log("warming up ...");
run("keyword", 100);
log(`keyword: ${words.length} queries × ${VARIANTS.length} variants ...`);
const keyword = run("keyword", words.length);
log("embedding every memory (first hybrid recall) ...");
store.recall(words[0]!, 10, undefined, "semantic");
const hybridCount = Number(args["hybrid-queries"]);
log(`hybrid: ${hybridCount} queries × ${VARIANTS.length} variants ...`);
const hybrid = run("hybrid", hybridCount);
const load1 = os.loadavg()[0]!;
store.close();
rmSync(work, { recursive: true, force: true });

const table = [
  "| query (in process, limit 10) | keyword p50 / p95 / p99 | keyword CPU p50 / p95 | hybrid p50 / p95 / p99 | hybrid CPU p50 / p95 | empty answers (keyword) |",
  "|---|---|---|---|---|---|",
  ...VARIANTS.map((v) => {
    const k = keyword.times[v.key]!;
    const h = hybrid.times[v.key]!;
    const kc = keyword.cpu[v.key]!;
    const hc = hybrid.cpu[v.key]!;
    return `| ${v.label} | ${ms(pct(k, 50))} / ${ms(pct(k, 95))} / ${ms(pct(k, 99))} | ${ms(pct(kc, 50))} / ${ms(pct(kc, 95))} | ${ms(pct(h, 50))} / ${ms(pct(h, 95))} / ${ms(pct(h, 99))} | ${ms(pct(hc, 50))} / ${ms(pct(hc, 95))} | ${keyword.empty[v.key]} of ${keyword.count} |`;
  }),
].join("\n");
const cpus = os.cpus();
const entry = `### ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC — latency at ${N.toLocaleString("en")} memories (\`bun run bench/time-recall.ts\`), Dionysus ${VERSION}, Bun ${Bun.version}, ${os.availableParallelism()} CPUs (${cpus[0]?.model ?? "unknown"}), load average ${load0.toFixed(1)} at start and ${load1.toFixed(1)} at the end

${table}

- Same generated queries as bench:recall (${keyword.count} for keyword, ${hybrid.count} for hybrid), each asked in every variant, interleaved (the first variant rotates); the time includes reading the phrase. occurred_at spread evenly over 2022–2024, so a day holds about ${Math.round(N / 1096)} memories, a month ${Math.round(N / 36)}, a year ${Math.round(N / 3)}.
- Goal: keyword p95 ≤ 10 ms at 100,000 memories.
`;
process.stdout.write(`\n${entry}\n`);
if (!args["no-write"])
  appendToSection(
    "## Time in questions",
    'A time named in a query (core/time-query.ts: "yesterday", "in May 2023", "on 9 November, 2022") boosts the memories of that time (occurred_at, else created_at) by default, or filters to them (`time: filter`). Quality on the LoCoMo dev conversations is in `bun run bench:quality` (the time rows and the table of questions that name a time); latency here.',
    entry,
  );
