#!/usr/bin/env bun
/**
 * MCP recall round trip at 100k memories: the SDK's own client calls the `recall` tool of
 * `dionysus mcp` over stdio (on the database directly, and through a running daemon) and of the
 * daemon's `/mcp` over Streamable HTTP, one call at a time, and the same queries go to
 * `POST /v1/recall` as the reference. Client-side p50/p95/p99 side by side in one run. The corpus
 * is bench/corpus.ts's, loaded like bench:recall's (and shared with it, under bench/.data/).
 *
 *   bun run bench:mcp                    # 100,000 memories, compiled binary
 *   bun run bench:mcp -- --n 10000       # a quick run
 *
 * Flags: --n, --queries, --seed, --fresh (reload the data), --no-build (run from source).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    queries: { type: "string", default: "1000" },
    seed: { type: "string", default: "42" },
    fresh: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const SEED = Number(args.seed);
const log = (s: string) => process.stderr.write(`${s}\n`);

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}
const ms = (x: number) => `${x.toFixed(2)} ms`;

// ---- the binary and the data ----------------------------------------------------------------

const dataRoot = join(ROOT, "bench/.data");
mkdirSync(dataRoot, { recursive: true });
let cmd: string[];
if (args["no-build"]) cmd = [process.execPath, join(ROOT, "src/cli/main.ts")];
else {
  log("building the binary ...");
  const bin = join(dataRoot, "dionysus-mcp-bench");
  const b = Bun.spawnSync([process.execPath, "build", "--compile", "src/cli/main.ts", "--outfile", bin], {
    cwd: ROOT,
    stdout: "ignore",
    stderr: "pipe",
  });
  if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr.toString()}`);
  cmd = [bin];
}

// The same pristine data dir as bench:recall, so either benchmark reuses the other's load.
const pristine = join(dataRoot, `recall-${N}-s${SEED}`);
const marker = join(pristine, "bench.json");
if (args.fresh || !existsSync(marker)) {
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
  writeFileSync(marker, JSON.stringify({ n: N, seed: SEED, seconds, rate: N / seconds }));
} else log(`reusing ${N} memories in ${pristine}`);
const work = join(dataRoot, "mcp-run");
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true, mode: 0o700 });
copyFileSync(join(pristine, "edge.db"), join(work, "edge.db"));

const qgen = corpus(SEED + 1);
const queries = Array.from({ length: Number(args.queries) }, () => qgen.query());
const WARMUP = 50;

/** One recall on some path; resolves when the answer is in. */
type Path = { label: string; goal?: number; recall: (query: string) => Promise<void> };

/** The `recall` tool through an MCP client. */
function viaMcp(client: Client): (query: string) => Promise<void> {
  return async (query) => {
    const r = await client.callTool({ name: "recall", arguments: { query, limit: 10 } });
    if (r.isError) throw new Error(`recall failed: ${JSON.stringify(r.content)}`);
  };
}

async function stdioClient(): Promise<Client> {
  const client = new Client({ name: "bench", version: "0" });
  await client.connect(
    new StdioClientTransport({
      command: cmd[0]!,
      args: [...cmd.slice(1), "mcp", "--data-dir", work],
      stderr: "ignore",
    }),
  );
  return client;
}

// `dionysus mcp` without a daemon opens the database itself: connected before the daemon starts.
const direct = await stdioClient();
await direct.callTool({ name: "recent", arguments: { limit: 1 } });

const daemon = Bun.spawn([...cmd, "serve", "--port", "0", "--json", "--data-dir", work], {
  stdout: "pipe",
  stderr: "ignore",
});
const clients: Client[] = [direct];
const samples = new Map<string, number[]>();
const results: Array<Path & { times: number[] }> = [];
let load0 = 0;
let load1 = 0;
try {
  const reader = daemon.stdout.getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("serve exited");
    line += new TextDecoder().decode(value);
  }
  const { url } = JSON.parse(line) as { url: string };
  const auth = { Authorization: `Bearer ${readFileSync(join(work, "api-token"), "utf8").trim()}` };
  const http = new Client({ name: "bench", version: "0" });
  await http.connect(
    new StreamableHTTPClientTransport(new URL(`${url}/mcp`), { requestInit: { headers: auth } }),
  );
  const through = await stdioClient();
  clients.push(http, through);

  const paths: Path[] = [
    { label: "stdio, on the database (no daemon)", goal: 15, recall: viaMcp(direct) },
    { label: "stdio, through the daemon", goal: 15, recall: viaMcp(through) },
    { label: "Streamable HTTP, the daemon's /mcp", goal: 10, recall: viaMcp(http) },
    {
      label: "reference: POST /v1/recall (no MCP)",
      recall: async (query) => {
        const res = await fetch(`${url}/v1/recall`, {
          method: "POST",
          headers: { ...auth, "Content-Type": "application/json" },
          body: JSON.stringify({ query, limit: 10 }),
        });
        if (!res.ok) throw new Error(`recall answered ${res.status}`);
        await res.json();
      },
    },
  ];
  log(`warming up, then ${queries.length} queries on each of ${paths.length} paths, interleaved ...`);
  for (const q of queries.slice(0, WARMUP)) for (const p of paths) await p.recall(q);
  load0 = loadavg()[0]!;
  // Each query goes down every path in turn (starting with a different one each time), so the
  // machine's load weighs on all of them alike.
  for (const [i, q] of queries.entries()) {
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(i + k) % paths.length]!;
      const t0 = performance.now();
      await p.recall(q);
      const took = performance.now() - t0;
      const list = samples.get(p.label) ?? [];
      list.push(took);
      samples.set(p.label, list);
    }
  }
  load1 = loadavg()[0]!;
  results.push(...paths.map((p) => ({ ...p, times: (samples.get(p.label) ?? []).sort((a, b) => a - b) })));
} finally {
  for (const c of clients) await c.close();
  daemon.kill("SIGTERM");
  await daemon.exited;
}

// ---- report ---------------------------------------------------------------------------------

const rows = results.map(({ label, goal, times }) => {
  const verdict =
    goal === undefined ? "" : `p95 ≤ ${goal} ms: ${pct(times, 95) <= goal ? "met" : "**missed**"}`;
  return `| ${label} | ${ms(pct(times, 50))} | ${ms(pct(times, 95))} | ${ms(pct(times, 99))} | ${verdict} |`;
});
process.stdout.write(
  [
    `MCP recall round trip, ${N.toLocaleString("en")} memories, ${queries.length} queries per path (limit 10, interleaved, after ${WARMUP} warm-up), ${args["no-build"] ? "from source" : "compiled binary"}, Bun ${Bun.version}, load average ${load0.toFixed(1)} → ${load1.toFixed(1)}`,
    "",
    "| path | p50 | p95 | p99 | goal |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n"),
);
rmSync(work, { recursive: true, force: true });
