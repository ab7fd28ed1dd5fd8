#!/usr/bin/env bun
/**
 * Edge recall benchmark. Loads N memories of realistic text into a data dir (direct
 * store path: `createSqliteStore().create()`, one transaction per memory, exactly what the daemon
 * does per request), then measures a real `dionysus serve` process over localhost HTTP:
 * recall p50/p95/p99, single ingest latency, concurrent ingest rate, serve → healthy time, peak
 * RSS, database and WAL sizes, and the compiled binary's size. Prints a Markdown table and
 * appends it to bench/RESULTS.md as a new "Edge recall" section.
 *
 *   bun run bench:recall                      # 100,000 memories
 *   bun run bench:recall -- --n 10000         # a quick run
 *
 * Flags: --n, --queries, --ingest, --concurrent, --clients, --starts, --seed, --quality,
 * --fresh (reload the data), --no-build (run from source), --no-write (do not touch RESULTS.md).
 *
 * The data stays as written (the daemon merges the keyword index only after 5 s without writes or
 * requests, which these phases do not leave); the merged index's cost and gain on the same data:
 * bench/recall-merge.ts (`bun run bench:recall-merge`).
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { toFtsQuery } from "../src/core/query.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import { type PlanSource, planRecall, STOPWORDS } from "../src/edge/store/sqlite/recall-plan.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    queries: { type: "string", default: "2000" },
    ingest: { type: "string", default: "500" },
    concurrent: { type: "string", default: "2000" },
    clients: { type: "string", default: "8" },
    starts: { type: "string", default: "7" },
    seed: { type: "string", default: "42" },
    quality: { type: "string", default: "150" },
    fresh: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const SEED = Number(args.seed);
const log = (s: string) => process.stderr.write(`${s}\n`);

// ---- helpers ------------------------------------------------------------------------------

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}
const ms = (x: number) => `${x.toFixed(2)} ms`;
const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);

async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = s.port!;
  await s.stop(true);
  return port;
}

function machine() {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ?? "unknown";
  const sqlite = new Database(":memory:").query("SELECT sqlite_version() AS v").get() as { v: string };
  return { nproc: availableParallelism(), cpu, ram: mb(totalmem()), bun: Bun.version, sqlite: sqlite.v };
}

// ---- 1. the binary --------------------------------------------------------------------------

let serveCmd: string[];
let binarySize = 0;
let binaryGzip = 0;
if (!args["no-build"]) {
  log("building dist/dionysus ...");
  const b = Bun.spawnSync([process.execPath, "run", "build"], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "pipe",
  });
  if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr.toString()}`);
  binarySize = size(join(ROOT, "dist/dionysus"));
  binaryGzip = Bun.gzipSync(readFileSync(join(ROOT, "dist/dionysus"))).length;
  serveCmd = [join(ROOT, "dist/dionysus")];
} else {
  serveCmd = [process.execPath, join(ROOT, "src/cli/main.ts")];
  if (existsSync(join(ROOT, "dist/dionysus"))) binarySize = size(join(ROOT, "dist/dionysus"));
}

// ---- 2. the data ------------------------------------------------------------------------------

const dataRoot = join(ROOT, "bench/.data");
const pristine = join(dataRoot, `recall-${N}-s${SEED}`);
const marker = join(pristine, "bench.json");
let load: { seconds: number; rate: number; reused: boolean };
if (!args.fresh && existsSync(marker)) {
  const m = JSON.parse(readFileSync(marker, "utf8")) as { seconds: number; rate: number };
  load = { ...m, reused: true };
  log(`reusing ${N} memories in ${pristine}`);
} else {
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
  load = { seconds, rate: N / seconds, reused: false };
  writeFileSync(marker, JSON.stringify({ n: N, seed: SEED, seconds, rate: load.rate }));
}
const work = join(dataRoot, "run");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true, mode: 0o700 });
copyFileSync(join(pristine, "edge.db"), join(work, "edge.db"));
const dbFile = join(work, "edge.db");
const avgContent = (() => {
  const db = new Database(dbFile, { readonly: true });
  const r = db
    .query(
      "SELECT avg(length(content)) AS a, min(length(content)) AS lo, max(length(content)) AS hi FROM memories",
    )
    .get() as {
    a: number;
    lo: number;
    hi: number;
  };
  db.close();
  return r;
})();

// ---- 3. serve → healthy -----------------------------------------------------------------------

interface Daemon {
  proc: ReturnType<typeof Bun.spawn>;
  url: string;
  healthyMs: number;
  readyMs: number;
}

async function startDaemon(): Promise<Daemon> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const proc = Bun.spawn([...serveCmd, "serve", "--port", String(port), "--data-dir", work, "--json"], {
    cwd: ROOT,
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env, DIONYSUS_HOME: work },
  });
  let healthyMs = -1;
  while (healthyMs < 0) {
    if (performance.now() - t0 > 30_000) throw new Error("serve did not become healthy in 30 s");
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) healthyMs = performance.now() - t0;
    } catch {
      await Bun.sleep(2);
    }
  }
  // The announcement line comes once the background integrity check passed (writes accepted).
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("serve exited");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return { proc, url, healthyMs, readyMs: performance.now() - t0 };
}

async function stopDaemon(d: Daemon) {
  d.proc.kill("SIGTERM");
  await d.proc.exited;
}

log("measuring serve → healthy ...");
const starts: { healthy: number; ready: number }[] = [];
for (let i = 0; i < Number(args.starts); i++) {
  const d = await startDaemon();
  starts.push({ healthy: d.healthyMs, ready: d.readyMs });
  await stopDaemon(d);
}
const healthySorted = starts.map((s) => s.healthy).sort((a, b) => a - b);
const readySorted = starts.map((s) => s.ready).sort((a, b) => a - b);

// ---- 4. the workload --------------------------------------------------------------------------

const load0 = loadavg()[0]!;
const daemon = await startDaemon();
const pid = daemon.proc.pid;
// The edge API needs its bearer token (written by the daemon next to its database).
const token = readFileSync(join(work, "api-token"), "utf8").trim();
const post = (path: string, body: unknown) =>
  fetch(`${daemon.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });

const qgen = corpus(SEED + 1);
const queries = Array.from({ length: Number(args.queries) }, () => qgen.query());
log("warming up ...");
for (const q of queries.slice(0, 100)) await (await post("/v1/recall", { query: q, limit: 10 })).json();

log(`recall: ${queries.length} queries ...`);
const recallClient: number[] = [];
const recallServer: number[] = [];
let hits = 0;
for (const q of queries) {
  const t0 = performance.now();
  const res = await post("/v1/recall", { query: q, limit: 10 });
  const body = (await res.json()) as { results: unknown[]; took_ms: number };
  recallClient.push(performance.now() - t0);
  recallServer.push(body.took_ms);
  if (res.status !== 200) throw new Error(`recall answered ${res.status}`);
  if (body.results.length > 0) hits++;
}
recallClient.sort((a, b) => a - b);
recallServer.sort((a, b) => a - b);

log(`single ingest: ${args.ingest} sequential ...`);
const igen = corpus(SEED + 2);
const ingest: number[] = [];
for (let i = 0; i < Number(args.ingest); i++) {
  const { content, tags } = igen.memory();
  const t0 = performance.now();
  const res = await post("/v1/memories", { content, tags });
  await res.arrayBuffer();
  ingest.push(performance.now() - t0);
  if (res.status !== 201) throw new Error(`ingest answered ${res.status}`);
}
ingest.sort((a, b) => a - b);

const clients = Number(args.clients);
const total = Number(args.concurrent);
log(`concurrent ingest: ${total} with ${clients} clients ...`);
const bodies = Array.from({ length: total }, () => igen.memory());
let next = 0;
const tc = performance.now();
await Promise.all(
  Array.from({ length: clients }, async () => {
    while (next < bodies.length) {
      const b = bodies[next++]!;
      const res = await post("/v1/memories", b);
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`ingest answered ${res.status}`);
    }
  }),
);
const concurrentRate = total / ((performance.now() - tc) / 1000);

const status = readFileSync(`/proc/${pid}/status`, "utf8");
const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
const dbSize = size(dbFile);
const walSize = size(`${dbFile}-wal`);
const load1 = loadavg()[0]!;
await stopDaemon(daemon);
const dbAfterStop = size(dbFile);
const walAfterStop = size(`${dbFile}-wal`);

// ---- 5. ranking agreement ----------------------------------------------------------------------

log("ranking agreement with unpruned bm25 ...");
const store = createSqliteStore({ path: dbFile, integrityCheck: false });
const raw = new Database(dbFile, { readonly: true });
const fullRank = raw.query(
  "SELECT rowid FROM memories_fts WHERE memories_fts MATCH ? ORDER BY rank LIMIT 10",
);
const ridOf = raw.query("SELECT rid FROM memories WHERE id = ?");
const planSource: PlanSource = {
  countCapped: (t, cap) =>
    (
      raw
        .query("SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)")
        .get(`"${t}"`, cap) as { n: number }
    ).n,
  countInWindow: (m, lo, cap) =>
    (
      raw
        .query(
          "SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? LIMIT ?)",
        )
        .get(m, lo, cap) as { n: number }
    ).n,
  maxRowid: () => (raw.query("SELECT max(rid) AS n FROM memories").get() as { n: number }).n,
};
const agreement = { candidates: { sum: 0, n: 0 }, newest: { sum: 0, n: 0 } };
const fullMs: number[] = [];
for (const q of queries.slice(0, Number(args.quality))) {
  const words = q.split(/\s+/).filter((w) => !STOPWORDS.has(w.toLowerCase()));
  const fts = toFtsQuery(words.length ? words.join(" ") : q);
  if (!fts) continue;
  const t0 = performance.now();
  const full = new Set((fullRank.all(fts) as { rowid: number }[]).map((r) => r.rowid));
  fullMs.push(performance.now() - t0);
  if (full.size === 0) continue;
  const planned = store.recall(q, 10).map((h) => (ridOf.get(h.memory.id) as { rid: number }).rid);
  const bucket = planRecall(q, planSource)?.minRowid ? agreement.newest : agreement.candidates;
  bucket.sum += planned.filter((r) => full.has(r)).length / full.size;
  bucket.n++;
}
raw.close();
fullMs.sort((a, b) => a - b);

// ---- 5b. recall by mode, in process, side by side ----------------------------------------------

log("in-process recall by mode (first: embedding every memory) ...");
const embedStarted = performance.now();
store.recall(queries[0]!, 10, undefined, "semantic");
const embedMs = performance.now() - embedStarted;
const MODES = ["keyword", "hybrid", "semantic"] as const;
const byMode = Object.fromEntries(MODES.map((m) => [m, [] as number[]])) as Record<
  (typeof MODES)[number],
  number[]
>;
// CPU time (user + system) of each recall too: on a machine shared with other jobs, the wall
// clock also counts the time spent waiting for a core.
const cpuByMode = Object.fromEntries(MODES.map((m) => [m, [] as number[]])) as Record<
  (typeof MODES)[number],
  number[]
>;
queries.forEach((q, i) => {
  // The starting mode rotates, so the machine's load weighs on all of them alike.
  for (let j = 0; j < MODES.length; j++) {
    const mode = MODES[(i + j) % MODES.length]!;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    store.recall(q, 10, undefined, mode);
    byMode[mode].push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuByMode[mode].push((c.user + c.system) / 1000);
  }
});
for (const m of MODES) byMode[m].sort((a, b) => a - b);
for (const m of MODES) cpuByMode[m].sort((a, b) => a - b);
store.close();

// ---- 6. report --------------------------------------------------------------------------------

const m = machine();
const goal = (ok: boolean) => (ok ? "met" : "**missed**");
const rows: [string, string, string][] = [
  [
    "memories loaded",
    `${N.toLocaleString("en")} (avg ${Math.round(avgContent.a)} chars, ${avgContent.lo}–${avgContent.hi})`,
    "",
  ],
  [
    "load (direct store, 1 transaction per memory)",
    `${load.rate.toFixed(0)} memories/s (${load.seconds.toFixed(0)} s${load.reused ? ", earlier run" : ""})`,
    "",
  ],
  [
    "recall p50 / p95 / p99 (HTTP, client side)",
    `${ms(pct(recallClient, 50))} / ${ms(pct(recallClient, 95))} / ${ms(pct(recallClient, 99))}`,
    `p95 ≤ 10 ms: ${goal(pct(recallClient, 95) <= 10)} (required: 100 ms: ${goal(pct(recallClient, 95) <= 100)})`,
  ],
  [
    "recall p50 / p95 / p99 (server took_ms)",
    `${ms(pct(recallServer, 50))} / ${ms(pct(recallServer, 95))} / ${ms(pct(recallServer, 99))}`,
    "",
  ],
  ...MODES.map((m): [string, string, string] => [
    `in-process \`store.recall\` ${m}, p50 / p95 / p99`,
    `${ms(pct(byMode[m], 50))} / ${ms(pct(byMode[m], 95))} / ${ms(pct(byMode[m], 99))}`,
    m === "keyword" ? "same queries, modes interleaved" : `p95 ≤ 10 ms: ${goal(pct(byMode[m], 95) <= 10)}`,
  ]),
  ...MODES.map((m): [string, string, string] => [
    `… CPU time of the process per \`store.recall\` ${m}, p50 / p95 / p99`,
    `${ms(pct(cpuByMode[m], 50))} / ${ms(pct(cpuByMode[m], 95))} / ${ms(pct(cpuByMode[m], 99))}`,
    "user + system, all threads (not waiting for a core)",
  ]),
  ["embedding every memory (first vector recall)", ms(embedMs), ""],
  ["recall queries / with results", `${queries.length} / ${hits}`, ""],
  [
    "unpruned bm25 over the same words, p50 / p95",
    `${ms(pct(fullMs, 50))} / ${ms(pct(fullMs, 95))}`,
    "in-process, for comparison",
  ],
  [
    "top-10 agreement with unpruned bm25: queries with a word in ≤ 3,000 memories",
    `${((agreement.candidates.sum / Math.max(agreement.candidates.n, 1)) * 100).toFixed(0)} % (${agreement.candidates.n} queries)`,
    "",
  ],
  [
    "… queries of only common words (ranked among the newest matches)",
    `${((agreement.newest.sum / Math.max(agreement.newest.n, 1)) * 100).toFixed(0)} % (${agreement.newest.n} queries)`,
    "by design",
  ],
  [
    "single ingest p50 / p95 / p99",
    `${ms(pct(ingest, 50))} / ${ms(pct(ingest, 95))} / ${ms(pct(ingest, 99))}`,
    `p95 ≤ 10 ms: ${goal(pct(ingest, 95) <= 10)}`,
  ],
  [
    "concurrent ingest rate",
    `${concurrentRate.toFixed(0)} memories/s (${clients} clients, ${total} POSTs)`,
    "",
  ],
  [
    `serve → healthy /health (median of ${starts.length})`,
    `${ms(pct(healthySorted, 50))} (min ${ms(healthySorted[0]!)}, max ${ms(healthySorted.at(-1)!)})`,
    `< 500 ms: ${goal(pct(healthySorted, 50) < 500)}`,
  ],
  ["serve → writes accepted (integrity check done)", `${ms(pct(readySorted, 50))}`, ""],
  ["daemon peak RSS (VmHWM)", mb(hwm), `< 100 MB: ${goal(hwm < 100 * 1024 * 1024)}`],
  ["database / WAL while running", `${mb(dbSize)} / ${mb(walSize)}`, ""],
  ["database / WAL after stop", `${mb(dbAfterStop)} / ${mb(walAfterStop)}`, ""],
  [
    "compiled binary (dist/dionysus)",
    binarySize ? `${mb(binarySize)}${binaryGzip ? ` (gzip ${mb(binaryGzip)})` : ""}` : "not built",
    `required: 50 MB installed: ${goal(binarySize > 0 && binarySize <= 50 * 1024 * 1024)}`,
  ],
];
const table = [
  "| measure | result | goal |",
  "|---|---|---|",
  ...rows.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`),
].join("\n");
const context = [
  `Run ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC on ${m.nproc} CPUs (${m.cpu}), ${m.ram} RAM; Bun ${m.bun}, SQLite ${m.sqlite}.`,
  `Daemon: ${serveCmd[0]!.endsWith("dionysus") ? "the compiled binary" : "bun src/cli/main.ts"}; load average ${load0.toFixed(1)} → ${load1.toFixed(1)} during the workload (other processes share this machine).`,
  `Queries: ${args.queries} generated ones — 40 % one content word, 30 % two, 15 % three, 15 % questions like "what did I say about the X and Y"; limit 10, sequential, one keep-alive connection.`,
].join("\n");
const notes = [
  "Notes:",
  "",
  "- Recall: the words found in at most about 3,000 memories choose the candidates and every other word",
  "  adds to their score, which reproduces the unpruned bm25 top 10; a query made only of common words is",
  "  ranked among the newest memories containing them (hence the lower agreement there).",
  "- Ingest latency is dominated by the fsync of each commit (`synchronous = FULL`, so an acknowledged write",
  "  survives a power loss); its tail moves with the disk load of whatever else runs on the machine.",
  "- Serve → healthy is the time until `/health` answers. Writes wait for the background `PRAGMA quick_check`,",
  "  which reads the whole file (its time grows with the database size); reads are served meanwhile.",
  "- The binary is Bun's runtime (about 100 MB on its own) plus the app; the 50 MB target is not reachable",
  "  with `bun build --compile`. Compressed for download it is about half.",
  "- This machine is shared with other jobs: runs vary by tens of percent; the load average is given above.",
].join("\n");
const section = `## Edge recall\n\n${context}\n\n${table}\n\n${notes}\n`;
process.stdout.write(`${section}\n`);

if (!args["no-write"]) {
  const file = join(ROOT, "bench/RESULTS.md");
  // Appended, never replacing an earlier run: RESULTS.md is the history of every measurement.
  const text = `${(existsSync(file) ? readFileSync(file, "utf8") : "# Benchmark results\n").trimEnd()}\n\n${section}`;
  writeFileSync(file, text.endsWith("\n") ? text : `${text}\n`);
  // Keep the file as the formatter (checked by `bun run check`) wants it: aligned tables.
  Bun.spawnSync([join(ROOT, "node_modules/.bin/biome"), "format", "--write", file], {
    cwd: ROOT,
    stdout: "ignore",
  });
  log(`written to ${file}`);
}
rmSync(work, { recursive: true, force: true });
