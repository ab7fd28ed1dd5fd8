#!/usr/bin/env bun
/**
 * What `mode: auto` costs on a device never logged in to a VPS, where a question runs hybrid on
 * the device (src/core/router.ts): one `dionysus serve` (from source) on bench:recall's 100,000
 * memories, left idle until it has merged its keyword index and embedded every memory (what a
 * daemon does a few seconds after the last write), then the same generated queries (bench
 * corpus: 15 % questions) asked over HTTP as `mode: auto` and as `mode: keyword` (the old auto),
 * interleaved, the first of the two alternating. Reports p50 / p95 / p99 of the round trip and of
 * the server's took_ms, for all queries and for the questions alone, with the load average.
 *
 *   bun run bench/auto-mode.ts [--queries 1000] [--n 100000]
 *
 * Needs bench:recall's data (bench/.data/recall-N-s42, made by `bun run bench:recall`).
 */
import { copyFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isNaturalLanguage } from "../src/core/router.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: { n: { type: "string", default: "100000" }, queries: { type: "string", default: "1000" } },
});
const pristine = join(ROOT, "bench/.data", `recall-${args.n}-s42`, "edge.db");
if (!existsSync(pristine)) {
  console.error(`bench/auto-mode: no ${pristine}; run bun run bench:recall first`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), "dionysus-auto-"));
copyFileSync(pristine, join(dir, "edge.db"));
const port = 20_000 + Math.floor(Math.random() * 20_000);
const proc = Bun.spawn(
  [
    "bun",
    join(ROOT, "src/cli/main.ts"),
    "serve",
    "--data-dir",
    dir,
    "--port",
    String(port),
    "--log-level",
    "debug",
  ],
  { stdout: "ignore", stderr: "pipe", env: { ...process.env, DIONYSUS_HOME: dir } },
);
let log = "";
void (async () => {
  for await (const chunk of proc.stderr) log += new TextDecoder().decode(chunk);
})();
const base = `http://127.0.0.1:${port}`;
const started = Date.now();
const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
  while (!(await ok())) {
    if (Date.now() - started > 600_000) throw new Error(`timed out waiting for ${what}\n${log}`);
    await Bun.sleep(500);
  }
};
try {
  await until("the daemon", async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok === true);
  const token = (await Bun.file(join(dir, "api-token")).text()).trim();
  console.error("idle: waiting for the index merge and the vectors ...");
  await until("the idle work", () => log.includes('"vectors_embedded"'));
  const gen = corpus(7);
  const queries = Array.from({ length: Number(args.queries) }, () => gen.query());
  const ask = async (query: string, mode: string) => {
    const t0 = performance.now();
    const res = await fetch(`${base}/v1/recall`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ query, mode, limit: 10 }),
    });
    const body = (await res.json()) as { took_ms: number };
    if (!res.ok) throw new Error(JSON.stringify(body));
    return { wall: performance.now() - t0, took: body.took_ms };
  };
  for (const q of queries.slice(0, 50)) await ask(q, "auto");
  const load0 = loadavg()[0]!;
  const rows: { q: string; mode: string; wall: number; took: number }[] = [];
  for (const [i, q] of queries.entries())
    for (const mode of i % 2 ? ["auto", "keyword"] : ["keyword", "auto"])
      rows.push({ q, mode, ...(await ask(q, mode)) });
  const load1 = loadavg()[0]!;
  const pct = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!.toFixed(2);
  };
  const line = (label: string, pick: (r: (typeof rows)[number]) => boolean) => {
    for (const mode of ["auto", "keyword"]) {
      const sel = rows.filter((r) => r.mode === mode && pick(r));
      const w = sel.map((r) => r.wall);
      const t = sel.map((r) => r.took);
      console.log(
        `| ${label}, mode ${mode} (${sel.length}) | ${pct(w, 50)} / ${pct(w, 95)} / ${pct(w, 99)} | ${pct(t, 50)} / ${pct(t, 95)} / ${pct(t, 99)} |`,
      );
    }
  };
  console.log(
    `load average ${load0.toFixed(1)} at start, ${load1.toFixed(1)} at the end; ${new Date().toISOString()}`,
  );
  console.log("| queries | round trip p50 / p95 / p99 ms | server took_ms p50 / p95 / p99 |");
  console.log("|---|---|---|");
  line("all", () => true);
  line("questions", (r) => isNaturalLanguage(r.q));
} finally {
  proc.kill();
  await proc.exited;
  rmSync(dir, { recursive: true, force: true });
}
