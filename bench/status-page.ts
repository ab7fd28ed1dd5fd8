#!/usr/bin/env bun
/**
 * The edge status page at N memories (100,000 by default): loads them into a data dir (direct
 * store path, as bench/recall.ts does; 20 of the queued writes marked failed so the page lists
 * failed items), then measures a real `dionysus serve` process over localhost HTTP: the first
 * render after a start (cold, the goal: under 200 ms), then warm renders of `/`, of a search and
 * of the filters, and the store calls the page makes, side by side. The daemon is the compiled
 * binary (as users run it; `--no-build` runs it from source). Prints a Markdown table and appends
 * it to bench/RESULTS.md under "Status page".
 *
 *   bun run bench:status-page                     # 100,000 memories
 *   bun run bench:status-page -- --n 10000        # a quick run
 *
 * Flags: --n, --requests, --starts, --fresh (reload the data), --no-build, --no-write.
 */
import { Database } from "bun:sqlite";
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    requests: { type: "string", default: "50" },
    starts: { type: "string", default: "5" },
    fresh: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const REQUESTS = Number(args.requests);
const STARTS = Number(args.starts);
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

// ---- the data -----------------------------------------------------------------------------------
const pristine = join(ROOT, "bench/.data", `status-page-${N}`);
const marker = join(pristine, "bench.json");
if (args.fresh || !existsSync(marker)) {
  rmSync(pristine, { recursive: true, force: true });
  mkdirSync(pristine, { recursive: true });
  log(`loading ${N} memories ...`);
  const gen = corpus(42);
  const store = createSqliteStore({ path: join(pristine, "edge.db") });
  for (let i = 0; i < N; i++) {
    const { content, tags } = gen.memory();
    store.create({ content, tags, kind: i % 50 === 0 ? "identity" : "episodic", metadata: {} });
    if (i > 0 && i % 20_000 === 0) log(`  ${i} ...`);
  }
  store.close();
  const db = new Database(join(pristine, "edge.db"));
  db.run(
    "UPDATE sync_queue SET status = 'failed', last_error = 'invalid_input: bench' WHERE mutation_id % 5000 = 0",
  );
  db.close();
  writeFileSync(marker, JSON.stringify({ n: N }));
}
const work = join(ROOT, "bench/.data", "status-page-run");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true, mode: 0o700 });
copyFileSync(join(pristine, "edge.db"), join(work, "edge.db"));

// ---- a real daemon ------------------------------------------------------------------------------
const binary = join(ROOT, "bench/.data", "dionysus-status-page");
if (!args["no-build"]) {
  log("compiling the binary ...");
  const b = Bun.spawnSync(
    [process.execPath, "build", "--compile", "--minify", "src/cli/main.ts", "--outfile", binary],
    { cwd: ROOT, stdout: "ignore", stderr: "pipe" },
  );
  if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr.toString()}`);
}
const command = args["no-build"] ? [process.execPath, join(ROOT, "src/cli/main.ts")] : [binary];
async function start(): Promise<{ url: string; token: string; stop: () => Promise<void> }> {
  const proc = Bun.spawn([...command, "serve", "--port", "0", "--json", "--data-dir", work], {
    stdout: "pipe",
    stderr: "ignore",
    env: { ...process.env, DIONYSUS_HOME: "" },
  });
  const reader = proc.stdout.getReader();
  let buf = "";
  while (!buf.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("serve exited");
    buf += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const { url } = JSON.parse(buf.slice(0, buf.indexOf("\n"))) as { url: string };
  const token = readFileSync(join(work, "api-token"), "utf8").trim();
  return {
    url,
    token,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

async function timed(url: string, token: string): Promise<{ ms: number; bytes: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  const body = await res.text();
  return { ms: performance.now() - t0, bytes: body.length, status: res.status };
}

const firsts: number[] = [];
let pageBytes = 0;
for (let i = 0; i < STARTS; i++) {
  const d = await start();
  const r = await timed(`${d.url}/`, d.token);
  if (r.status !== 200) throw new Error(`GET / answered ${r.status}`);
  firsts.push(r.ms);
  pageBytes = r.bytes;
  await d.stop();
}

const d = await start();
const gen = corpus(43);
const tagged = (() => {
  const db = new Database(join(work, "edge.db"), { readonly: true });
  const row = db.query("SELECT tags FROM memories WHERE tags != '[]' LIMIT 1").get() as { tags: string };
  db.close();
  return (JSON.parse(row.tags) as string[])[0]!;
})();
const cases: Array<[string, () => string]> = [
  ["`/` (warm)", () => "/"],
  ["`/?q=…` search", () => `/?q=${encodeURIComponent(gen.query())}`],
  ["`/?kind=identity`", () => "/?kind=identity"],
  ["`/?tag=…`", () => `/?tag=${encodeURIComponent(tagged)}`],
  ["`/?q=…&kind=identity`", () => `/?q=${encodeURIComponent(gen.query())}&kind=identity`],
];
const rows: string[] = [];
rows.push(
  `| first render after start (${STARTS} starts) | ${ms(pct(firsts, 50))} | ${ms(Math.max(...firsts))} (max) | ${(pageBytes / 1024).toFixed(1)} KiB |`,
);
for (const [name, path] of cases) {
  const xs: number[] = [];
  let bytes = 0;
  for (let i = 0; i < REQUESTS; i++) {
    const r = await timed(`${d.url}${path()}`, d.token);
    if (r.status !== 200) throw new Error(`${name} answered ${r.status}`);
    xs.push(r.ms);
    bytes = r.bytes;
  }
  rows.push(`| ${name} | ${ms(pct(xs, 50))} | ${ms(pct(xs, 95))} | ${(bytes / 1024).toFixed(1)} KiB |`);
}
await d.stop();

// The store calls the page makes, in process (where the time goes).
const store = createSqliteStore({ path: join(work, "edge.db"), integrityCheck: false });
const calls: Array<[string, () => unknown]> = [
  ["countMemories()", () => store.countMemories()],
  ["recent(20)", () => store.recent(20)],
  ["queueCounts()", () => store.queueCounts()],
  ["queueItems('failed', 20)", () => store.queueItems("failed", 20)],
  ["conflicts(10)", () => store.conflicts(10)],
  ["recall(q, 100)", () => store.recall(gen.query(), 100)],
];
for (const [name, fn] of calls) {
  const xs: number[] = [];
  for (let i = 0; i < REQUESTS; i++) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  rows.push(`| store: ${name} | ${ms(pct(xs, 50))} | ${ms(pct(xs, 95))} | |`);
}
store.close();

const when = new Date().toISOString().slice(0, 16).replace("T", " ");
const verdict =
  pct(firsts, 50) < 200
    ? `Goal (first render under 200 ms at ${N.toLocaleString("en")} memories): met, median ${ms(pct(firsts, 50))}, worst of ${STARTS} starts ${ms(Math.max(...firsts))}.`
    : `Goal (first render under 200 ms at ${N.toLocaleString("en")} memories): missed, median ${ms(pct(firsts, 50))}.`;
const table = `### ${when} UTC — ${N.toLocaleString("en")} memories, Bun ${Bun.version}, ${availableParallelism()}-core shared VM, loaded by parallel work (load average ${loadavg()[0]!.toFixed(1)})

| request (real \`dionysus serve\`, ${args["no-build"] ? "from source" : "compiled"}, localhost HTTP, bearer token) | p50 | p95 | page |
| --- | --- | --- | --- |
${rows.join("\n")}

- ${N.toLocaleString("en")} live memories, all ${N.toLocaleString("en")} writes still in the sync queue (no VPS), ${Math.floor(N / 5000)} of them failed. "First render" is the first \`GET /\` a fresh daemon answers (its first request: cold caches and code), timed from this script.
- ${verdict}
`;
process.stdout.write(`${table}\n`);
if (!args["no-write"]) {
  const file = join(ROOT, "bench/RESULTS.md");
  let text = readFileSync(file, "utf8");
  if (!text.includes("\n## Status page\n"))
    text += `\n## Status page\n\nThe edge daemon's page at \`/\` (count, recent memories, search with filters, sync queue, failed items, conflicts), rendered on the server. Goal: first render under 200 ms at 100k memories. Run with \`bun run bench:status-page\`.\n`;
  writeFileSync(file, `${text.trimEnd()}\n\n${table}`);
}
