#!/usr/bin/env bun
/**
 * Export and import benchmark. Loads N memories of realistic text into an edge data dir, then
 * measures, side by side in one run: `dionysus export` to a JSON Lines file, `dionysus import` of
 * that file into a fresh data dir (every memory new, all queued for sync), the same import again
 * (every memory unchanged), and the Markdown export and import. Each is timed in process (median and
 * p95 of --runs) and once as a real CLI process (what a user waits for). Goal: export and import of
 * 100,000 memories each under 10 s. Prints a Markdown section; appends it to bench/RESULTS.md
 * unless --no-write.
 *
 *   bun run bench/export.ts                 # 100,000 memories, 3 runs
 *   bun run bench/export.ts -- --n 10000    # a quick run
 */
import { appendFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { formatHlc } from "../src/core/hlc.ts";
import { uuidv7 } from "../src/core/uuid.ts";
import { exportJsonlFile, exportMarkdown } from "../src/edge/export/export.ts";
import { importPath } from "../src/edge/export/import.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import type { EdgeStore, ImportVersion } from "../src/edge/store/types.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    runs: { type: "string", default: "3" },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const RUNS = Number(args.runs);
const log = (s: string) => process.stderr.write(`${s}\n`);
const work = mkdtempSync(join(tmpdir(), "dionysus-bench-export-"));
const fresh = () => mkdtempSync(join(work, "d-"));
const open = (dir: string): EdgeStore =>
  createSqliteStore({ path: join(dir, "edge.db"), integrityCheck: false, fullDiskFallback: false });

function stats(xs: number[]): { median: number; p95: number } {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { median: at(0.5), p95: at(0.95) };
}
const sec = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function time(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const quiet = { maxContentBytes: 1 << 20, now: Date.now, onProblem: () => {} };

async function cli(cmd: string[]): Promise<number> {
  const t = performance.now();
  const p = Bun.spawn([process.execPath, join(ROOT, "src/cli/main.ts"), ...cmd], {
    stdout: "ignore",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" },
  });
  const code = await p.exited;
  if (code !== 0) throw new Error(`${cmd.join(" ")}: exit ${code}: ${await new Response(p.stderr).text()}`);
  return performance.now() - t;
}

// ---- load -----------------------------------------------------------------------------------

const source = fresh();
{
  const c = corpus(42);
  const node = "bench-writer";
  const start = Date.now() - N;
  const versions: ImportVersion[] = Array.from({ length: N }, (_, i) => ({
    private: false,
    memory: {
      id: uuidv7(start + i),
      scope: i % 5 === 0 ? "work" : null,
      source: "cli",
      occurred_at: null,
      ...c.memory(),
      kind: i % 50 === 0 ? "identity" : "episodic",
      metadata: i % 4 === 0 ? { source: "bench", i } : {},
      created_at: new Date(start + i).toISOString(),
      updated_at: new Date(start + i).toISOString(),
      hlc: formatHlc({ ms: start + i, counter: 0, node }),
      deleted: false,
      origin_device: node,
    },
  }));
  const store = open(source);
  const t = await time(() => {
    for (let i = 0; i < versions.length; i += 1000) store.importMemories(versions.slice(i, i + 1000));
  });
  store.close();
  log(`loaded ${N} memories in ${sec(t)}`);
}

// ---- measure ----------------------------------------------------------------------------------

const file = join(work, "export.jsonl");
const src = open(source);
const exportMs: number[] = [];
for (let r = 0; r < RUNS; r++)
  exportMs.push(await time(() => exportJsonlFile(src, src.deviceId, file, { includeDeleted: true })));
const fileBytes = statSync(file).size;

const importMs: number[] = [];
const reimportMs: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const dst = open(fresh());
  importMs.push(await time(() => importPath(dst, file, quiet)));
  if (dst.queueCounts().queued !== N)
    throw new Error(`expected ${N} queued, got ${dst.queueCounts().queued}`);
  reimportMs.push(await time(() => importPath(dst, file, quiet)));
  dst.close();
}

const mdExportMs: number[] = [];
const mdImportMs: number[] = [];
for (let r = 0; r < RUNS; r++) {
  const dir = join(fresh(), "md");
  mdExportMs.push(await time(() => exportMarkdown(src, dir, {})));
  const dst = open(fresh());
  mdImportMs.push(await time(() => importPath(dst, dir, quiet)));
  dst.close();
}
src.close();

const cliExport = await cli(["export", "--out", join(work, "cli.jsonl"), "--data-dir", source]);
const cliImport = await cli(["import", join(work, "cli.jsonl"), "--data-dir", fresh()]);

// ---- report -----------------------------------------------------------------------------------

const row = (what: string, xs: number[]) => {
  const s = stats(xs);
  return `| ${what} | ${sec(s.median)} | ${sec(s.p95)} | ${Math.round(N / (s.median / 1000)).toLocaleString("en")} /s |`;
};
const now = new Date().toISOString().slice(0, 16).replace("T", " ");
const section = `
## Export and import (\`bun run bench/export.ts\`)

### ${now} UTC — Bun ${Bun.version}, ${availableParallelism()} CPUs, 2-core shared VM, loaded by parallel work (load average ${loadavg()[0]!.toFixed(1)})

${N.toLocaleString("en")} memories (bench/corpus.ts text, ${(fileBytes / 1024 / 1024).toFixed(1)} MiB of JSON Lines), ${RUNS} runs each, in process:

| what | median | p95 | rate |
| --- | --- | --- | --- |
${row("export, JSON Lines file", exportMs)}
${row("import into a fresh data dir (all new, queued)", importMs)}
${row("import again (all unchanged)", reimportMs)}
${row("export, Markdown (one file each)", mdExportMs)}
${row("import of the Markdown directory", mdImportMs)}

As CLI processes, once: \`dionysus export --out\` ${sec(cliExport)}, \`dionysus import\` ${sec(cliImport)} (start-up included).
Goal: export and import of 100,000 memories each under 10 s.
`;
process.stdout.write(section);
if (!args["no-write"]) appendFileSync(join(ROOT, "bench/RESULTS.md"), section);
rmSync(work, { recursive: true, force: true });
