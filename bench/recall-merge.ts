#!/usr/bin/env bun
/**
 * The keyword index's idle merge at 100,000 memories (edge/index-merger.ts): what it gives recall
 * and what it costs. A phase of its own beside bench:recall, on the same data (bench/.data,
 * written one memory per transaction by bench:recall; loaded here the same way when missing).
 *
 * 1. Cost: a copy of the store is merged by the daemon's merger (`startIndexMerger`, the daemon's
 *    turn and gap, no idle wait) while another process writes one memory every 25 ms to the same
 *    file, as a CLI beside the daemon would: total merge time, turn and slice times, and that
 *    process's write latency before and during the merge.
 * 2. Gain: a second copy merged by the same merger (no writes), then the same queries against the
 *    unmerged and the merged copy, interleaved, keyword / hybrid / semantic, wall and CPU time.
 *
 *   bun run bench:recall-merge                 # 100,000 memories, 1,000 queries
 *   bun run bench:recall-merge -- --n 10000 --queries 300 --no-write
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { startIndexMerger } from "../src/edge/index-merger.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import type { EdgeStore, IndexMergeOptions } from "../src/edge/store/types.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    queries: { type: "string", default: "1000" },
    seed: { type: "string", default: "42" },
    writer: { type: "string" },
    "writer-ms": { type: "string", default: "15000" },
    "no-write": { type: "boolean", default: false },
  },
});
const log = (s: string) => process.stderr.write(`${s}\n`);
const clock = () => performance.timeOrigin + performance.now();

// ---- the writer process: one memory every 25 ms for writer-ms, latencies as JSON ----------------
if (args.writer) {
  const store = createSqliteStore({ path: args.writer, integrityCheck: false });
  const gen = corpus(Number(args.seed) + 9);
  const until = clock() + Number(args["writer-ms"]);
  const out: [number, number][] = [];
  while (clock() < until) {
    const { content, tags } = gen.memory();
    const t0 = clock();
    store.create({ content, tags, kind: "episodic", metadata: {} });
    out.push([t0, clock() - t0]);
    await Bun.sleep(25);
  }
  store.close();
  process.stdout.write(JSON.stringify(out));
  process.exit(0);
}

const N = Number(args.n);
const SEED = Number(args.seed);
function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
const f = (x: number) => x.toFixed(2);
const three = (a: number[]) => {
  const s = sorted(a);
  return `${f(pct(s, 50))} / ${f(pct(s, 95))} / ${f(pct(s, 99))}`;
};

// ---- the data (as bench:recall makes it) --------------------------------------------------------
const dataRoot = join(ROOT, "bench/.data");
const pristine = join(dataRoot, `recall-${N}-s${SEED}`);
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
  }
  const seconds = (performance.now() - t0) / 1000;
  store.close();
  writeFileSync(
    join(pristine, "bench.json"),
    JSON.stringify({ n: N, seed: SEED, seconds, rate: N / seconds }),
  );
}
const work = join(dataRoot, "merge-run");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const copy = (name: string) => {
  const p = join(work, `${name}.db`);
  // The pristine store is closed (its WAL checkpointed); a plain copy is a consistent database.
  copyFileSync(join(pristine, "edge.db"), p);
  if (existsSync(join(pristine, "edge.db-wal"))) copyFileSync(join(pristine, "edge.db-wal"), `${p}-wal`);
  return p;
};

const load0 = loadavg();
const started = new Date();
log(`load average ${load0.map((x) => x.toFixed(1)).join(" ")}`);

/** Runs the daemon's merger on `store` with real timers until it logs the merge done; returns
 * the log line, the duration and every turn's `mergeIndex` result. */
async function mergeWithMerger(store: EdgeStore) {
  const turns: { ms: number; maxSliceMs: number; slices: number; cpuMs: number }[] = [];
  const watched: EdgeStore = Object.create(store);
  watched.mergeIndex = (o?: IndexMergeOptions) => {
    const c0 = process.cpuUsage();
    const r = store.mergeIndex(o);
    const c = process.cpuUsage(c0);
    turns.push({ ms: r.ms, maxSliceMs: r.maxSliceMs, slices: r.slices, cpuMs: (c.user + c.system) / 1000 });
    return r;
  };
  const t0 = clock();
  const done = Promise.withResolvers<Record<string, unknown>>();
  const merger = startIndexMerger({
    store: watched,
    idleMs: 0,
    pollMs: 10,
    log: (e) => {
      if (e.event === "index_merged") done.resolve(e);
    },
  });
  const event = await done.promise;
  const t1 = clock();
  merger.stop();
  return { event, t0, t1, turns };
}

// ---- 1. the cost, with a writer beside it ---------------------------------------------------------
const costPath = copy("cost");
const costStore = createSqliteStore({ path: costPath, integrityCheck: false });
const segmentsBefore = costStore.indexStats().segments;
log(`cost: merging a copy (${segmentsBefore} segments) while another process writes ...`);
const writer = Bun.spawn(
  [
    process.execPath,
    import.meta.path,
    "--writer",
    costPath,
    "--writer-ms",
    args["writer-ms"],
    "--seed",
    String(SEED),
  ],
  { stdout: "pipe", stderr: "inherit" },
);
await Bun.sleep(2000); // the writer's first 2 s: its latency without a merge
const cost = await mergeWithMerger(costStore);
const writes = JSON.parse(await new Response(writer.stdout).text()) as [number, number][];
await writer.exited;
const segmentsAfter = costStore.indexStats().segments;
costStore.close();
const beforeMerge = writes.filter(([t]) => t < cost.t0).map(([, l]) => l);
const duringMerge = writes.filter(([t, l]) => t + l >= cost.t0 && t <= cost.t1).map(([, l]) => l);
const afterMerge = writes.filter(([t]) => t > cost.t1).map(([, l]) => l);
const ftsCheck = new Database(costPath);
ftsCheck.run("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')");
ftsCheck.close();

// ---- 2. the gain: unmerged and merged copies, same queries, interleaved ---------------------------
log("gain: merging a second copy with the merger (no writes) ...");
const unmerged = createSqliteStore({ path: copy("unmerged"), integrityCheck: false });
const merged = createSqliteStore({ path: copy("merged"), integrityCheck: false });
const gainMerge = await mergeWithMerger(merged);
const qgen = corpus(SEED + 1);
const queries = Array.from({ length: Number(args.queries) }, () => qgen.query());
log("embedding every memory in both copies (first vector recall) ...");
unmerged.recall(queries[0]!, 10, undefined, "semantic");
merged.recall(queries[0]!, 10, undefined, "semantic");
const MODES = ["keyword", "hybrid", "semantic"] as const;
const VARIANTS = [
  ["unmerged", unmerged],
  ["merged", merged],
] as const;
type Key = `${(typeof VARIANTS)[number][0]} ${(typeof MODES)[number]}`;
const wall = new Map<Key, number[]>();
const cpu = new Map<Key, number[]>();
let differ = 0;
for (const q of queries.slice(0, 50))
  for (const [, s] of VARIANTS) for (const m of MODES) s.recall(q, 10, undefined, m);
log(`recall: ${queries.length} queries × ${MODES.length} modes × 2 copies, interleaved ...`);
queries.forEach((q, i) => {
  for (let j = 0; j < MODES.length * 2; j++) {
    const k = (i + j) % (MODES.length * 2);
    const [name, store] = VARIANTS[k % 2]!;
    const mode = MODES[Math.floor(k / 2)]!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const hits = store.recall(q, 10, undefined, mode);
    const dt = performance.now() - t0;
    const c = process.cpuUsage(c0);
    const key: Key = `${name} ${mode}`;
    if (!wall.has(key)) wall.set(key, []);
    if (!cpu.has(key)) cpu.set(key, []);
    wall.get(key)!.push(dt);
    cpu.get(key)!.push((c.user + c.system) / 1000);
    if (name === "merged" && mode === "keyword") {
      const other = unmerged.recall(q, 10, undefined, mode).map((h) => h.memory.id);
      if (other.join() !== hits.map((h) => h.memory.id).join()) differ++;
    }
  }
});
const gainSegments = [unmerged.indexStats().segments, merged.indexStats().segments];
unmerged.close();
merged.close();
const load1 = loadavg();

// ---- report -------------------------------------------------------------------------------------
const sqlite = (new Database(":memory:").query("SELECT sqlite_version() AS v").get() as { v: string }).v;
const turnMs = cost.turns.map((t) => t.ms);
const table = [
  "| measure | result |",
  "|---|---|",
  `| segments: before → when the merge was done → after the writer's later writes (cost copy) | ${segmentsBefore} → ${cost.event.segments} → ${segmentsAfter} |`,
  `| merge, first slice to done (wall) | ${f(cost.t1 - cost.t0)} ms in ${cost.turns.length} turns, ${cost.event.slices} slices (${cost.event.pages} pages at most) |`,
  `| … CPU time of the merge turns | ${f(cost.turns.reduce((s, t) => s + t.cpuMs, 0))} ms |`,
  `| turn p50 / p95 / max (each blocks the daemon's event loop) | ${f(pct(sorted(turnMs), 50))} / ${f(pct(sorted(turnMs), 95))} / ${f(Math.max(...turnMs))} ms |`,
  `| slice, longest of each turn: p50 / p95 / max (a write from another process waits at most one) | ${f(pct(sorted(cost.turns.map((t) => t.maxSliceMs)), 50))} / ${f(pct(sorted(cost.turns.map((t) => t.maxSliceMs)), 95))} / ${f(Math.max(...cost.turns.map((t) => t.maxSliceMs)))} ms |`,
  `| other process's write p50 / p95 / p99: before the merge (${beforeMerge.length}) | ${three(beforeMerge)} ms |`,
  `| … during the merge (${duringMerge.length}) | ${three(duringMerge)} ms |`,
  `| … after it (${afterMerge.length}) | ${three(afterMerge)} ms |`,
  `| FTS5 integrity-check after merge with writes | ok |`,
  `| gain copy: merged by the merger without writes | ${f(gainMerge.t1 - gainMerge.t0)} ms, ${gainMerge.event.slices} slices; segments ${gainSegments[0]} (unmerged) vs ${gainSegments[1]} |`,
  ...MODES.flatMap((m) => [
    `| ${m}: wall p50 / p95 / p99, unmerged → merged | ${three(wall.get(`unmerged ${m}`)!)} → ${three(wall.get(`merged ${m}`)!)} ms |`,
    `| ${m}: CPU p50 / p95 / p99, unmerged → merged | ${three(cpu.get(`unmerged ${m}`)!)} → ${three(cpu.get(`merged ${m}`)!)} ms |`,
  ]),
  `| keyword top-10 ids differing between the copies | ${differ} of ${queries.length} queries |`,
].join("\n");
const section = [
  "## Keyword index merged while idle (issue 12)",
  "",
  `### ${started.toISOString().slice(0, 16).replace("T", " ")} UTC — ${availableParallelism()} CPUs, shared; Bun ${Bun.version}, SQLite ${sqlite}`,
  "",
  `\`bun run bench:recall-merge\`: ${N.toLocaleString("en")} memories written one per transaction (bench:recall's data), ${queries.length} queries (bench:recall's generator), limit 10, in process; load average ${load0[0]!.toFixed(1)} → ${load1[0]!.toFixed(1)} (5 min: ${load0[1]!.toFixed(1)} → ${load1[1]!.toFixed(1)}).`,
  "",
  table,
  "",
].join("\n");
process.stdout.write(`${section}\n`);
if (!args["no-write"]) {
  const file = join(ROOT, "bench/RESULTS.md");
  const text = `${readFileSync(file, "utf8").trimEnd()}\n\n${section}`;
  writeFileSync(file, text);
  Bun.spawnSync([join(ROOT, "node_modules/.bin/biome"), "format", "--write", file], {
    cwd: ROOT,
    stdout: "ignore",
  });
  log(`written to ${file}`);
}
rmSync(work, { recursive: true, force: true });
