/**
 * Dionysus beside its peers, in one run on one machine:
 *
 * 1. Replication. PouchDB 9 (LevelDB on disk, under node) replicating 10,000 documents written
 *    offline to a pouchdb-server 4.2 (its own process, LevelDB), then a fresh PouchDB replicating
 *    them all down; against Dionysus: a real edge daemon draining 10,000 queued offline writes to a
 *    real VPS (`vps serve` on PostgreSQL) with one sync run, then a new device (`dionysus login`)
 *    holding all 10,000. Times and RSS of each side, and the ratios.
 * 2. Local recall over the same 100,000 memories (bench/corpus.ts, one seed): the edge store's
 *    keyword recall (SQLite FTS5, `store.recall`) against MiniSearch 7 (in memory), each in a
 *    process of its own: query latency p50/p95 over the same queries, build time, RSS and size.
 *
 *   bun run bench:peers
 *   BENCH_WRITES=2000 BENCH_RECALL_N=20000 bun run bench:peers     # a quick run
 *
 * Prints Markdown; record it in bench/RESULTS.md by hand.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const WRITES = Number(process.env.BENCH_WRITES ?? 10_000);
const RECALL_N = Number(process.env.BENCH_RECALL_N ?? 100_000);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 500);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const rssOf = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
const hwmOf = (pid: number) =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) * 1024;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MB`;
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** The text of memory i: the same for both sides of a comparison. */
function memoryTexts(n: number): string[] {
  const c = corpus(42);
  return Array.from({ length: n }, () => c.memory().content);
}

// ---------------------------------------------------------------------------------------------
// 1a. PouchDB (node).

const POUCH_CLIENT = String.raw`
const PouchDB = require("pouchdb");
const [dir, remote, textsFile] = process.argv.slice(2);
const texts = JSON.parse(require("fs").readFileSync(textsFile, "utf8"));
(async () => {
  const local = new PouchDB(dir + "/local");
  for (let i = 0; i < texts.length; i += 1000)
    await local.bulkDocs(texts.slice(i, i + 1000).map((content, j) => ({ _id: "m" + String(i + j).padStart(6, "0"), content, kind: "episodic", tags: [] })));
  let t = performance.now();
  const up = await PouchDB.replicate(local, remote);
  const drainMs = performance.now() - t;
  const fresh = new PouchDB(dir + "/fresh");
  t = performance.now();
  const down = await PouchDB.replicate(remote, fresh);
  const bootstrapMs = performance.now() - t;
  const info = await fresh.info();
  process.stdout.write(JSON.stringify({ drainMs, bootstrapMs, written: up.docs_written, got: info.doc_count, rss: process.memoryUsage().rss }) + "\n");
})().catch((e) => { console.error(e); process.exit(1); });
`;

async function pouch(texts: string[]) {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-pouch-"));
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = Bun.spawn(
    [
      "node",
      join(ROOT, "node_modules/pouchdb-server/bin/pouchdb-server"),
      "--port",
      String(port),
      "--dir",
      join(dir, "server"),
      "--no-stdout-logs",
    ],
    { cwd: dir, stdout: "ignore", stderr: "ignore" },
  );
  try {
    Bun.spawnSync(["mkdir", "-p", join(dir, "server")]);
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/`)).ok) break;
      } catch {}
      if (Date.now() > deadline) throw new Error("pouchdb-server did not start");
      await Bun.sleep(100);
    }
    await fetch(`http://127.0.0.1:${port}/bench`, { method: "PUT" });
    const script = join(dir, "client.cjs");
    writeFileSync(script, POUCH_CLIENT);
    const textsFile = join(dir, "texts.json");
    writeFileSync(textsFile, JSON.stringify(texts));
    const client = Bun.spawn(["node", script, dir, `http://127.0.0.1:${port}/bench`, textsFile], {
      cwd: ROOT,
      env: { ...process.env, NODE_PATH: join(ROOT, "node_modules") },
      stdout: "pipe",
      stderr: "inherit",
    });
    const out = await new Response(client.stdout).text();
    if ((await client.exited) !== 0) throw new Error("the PouchDB client failed");
    const r = JSON.parse(out) as {
      drainMs: number;
      bootstrapMs: number;
      written: number;
      got: number;
      rss: number;
    };
    if (r.written !== texts.length || r.got !== texts.length)
      throw new Error(`PouchDB moved ${r.written} up and ${r.got} down of ${texts.length}`);
    return { ...r, serverRss: rssOf(server.pid), serverPeak: hwmOf(server.pid) };
  } finally {
    server.kill("SIGTERM");
    await server.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// 1b. Dionysus: an edge draining its queue to a VPS, and a new device.

async function dionysus(texts: string[]) {
  process.env.TEST_DATABASE_URL ??= "postgres://dionysus:dionysus@127.0.0.1:5432/dionysus_test";
  const { createCluster } = await import("../tests/helpers/cluster.ts");
  const { dbPath } = await import("../src/edge/daemon-file.ts");
  const { Database } = await import("bun:sqlite");
  const countLive = (dataDir: string) => {
    const db = new Database(dbPath(dataDir), { readonly: true });
    try {
      return (db.query("SELECT count(*) AS n FROM memories WHERE deleted = 0").get() as { n: number }).n;
    } finally {
      db.close();
    }
  };
  const cluster = await createCluster({ vpsEnv: { DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "1000000" } });
  try {
    const interval = { DIONYSUS_SYNC_INTERVAL_S: "30" };
    const a = await cluster.device("bench-a", interval);
    await cluster.stopVps();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < texts.length) {
          const content = texts[next++]!;
          const r = await a.api("POST", "/v1/memories", { content });
          if (r.status !== 201) throw new Error(`write: ${r.status}`);
        }
      }),
    );
    await cluster.startVps();
    const vpsPid = findVpsPid(cluster.vpsUrl);
    let t = performance.now();
    const run = await a.api<{ queue?: { queued: number } }>("POST", "/v1/sync/run");
    if (run.status !== 200) throw new Error(`sync run: ${run.status}`);
    const drainMs = performance.now() - t;
    const edgeRss = rssOf(a.pid()!);
    const edgePeak = hwmOf(a.pid()!);
    const c = await cluster.device("bench-new", interval, { login: false });
    t = performance.now();
    const login = await c.cli([
      "login",
      cluster.vpsUrl,
      "--api-key",
      cluster.apiKey,
      "--name",
      c.name,
      "--json",
    ]);
    if (login.code !== 0) throw new Error(`login: ${login.stderr}`);
    const deadline = Date.now() + 300_000;
    while (countLive(c.dataDir) < texts.length) {
      if (Date.now() > deadline) throw new Error("the new device did not get everything");
      await Bun.sleep(10);
    }
    const bootstrapMs = performance.now() - t;
    return {
      drainMs,
      bootstrapMs,
      edgeRss,
      edgePeak,
      newRss: rssOf(c.pid()!),
      vpsRss: vpsPid ? rssOf(vpsPid) : Number.NaN,
      vpsPeak: vpsPid ? hwmOf(vpsPid) : Number.NaN,
    };
  } finally {
    await cluster.close();
  }
}

/** The VPS process of the cluster: the `vps serve` whose command line names its port. */
function findVpsPid(url: string): number | undefined {
  const port = new URL(url).port;
  for (const pid of Bun.spawnSync(["ls", "/proc"], { stdout: "pipe" }).stdout.toString().split("\n")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (cmd.includes("vps") && cmd.includes("serve") && cmd.includes(port)) return Number(pid);
    } catch {}
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// 2. Local recall: each engine in a process of its own (`--recall sqlite|minisearch`).

async function recallChild(engine: string) {
  const c = corpus(42);
  const texts = Array.from({ length: RECALL_N }, () => c.memory().content);
  const queries = Array.from({ length: QUERIES }, () => c.query());
  const before = rssOf(process.pid);
  const t0 = performance.now();
  let search: (q: string) => number;
  let bytes = 0;
  let dir: string | undefined;
  if (engine === "sqlite") {
    const { createSqliteStore } = await import("../src/edge/store/sqlite/index.ts");
    // Loaded on /dev/shm where there is one: the store fsyncs each create, and the load is not
    // what is measured here (bench:recall measures ingest).
    dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "dionysus-recall-"));
    const store = createSqliteStore({ path: join(dir, "edge.db") });
    for (const content of texts) store.create({ content, kind: "episodic", tags: [], metadata: {} });
    search = (q) => store.recall(q, 10).length;
    const size = (p: string) => (existsSync(p) ? statSync(p).size : 0);
    bytes = size(join(dir, "edge.db")) + size(join(dir, "edge.db-wal"));
  } else {
    const { default: MiniSearch } = await import("minisearch");
    const ms = new MiniSearch<{ id: number; content: string }>({ fields: ["content"], storeFields: [] });
    ms.addAll(texts.map((content, id) => ({ id, content })));
    search = (q) => ms.search(q).slice(0, 10).length;
  }
  const buildMs = performance.now() - t0;
  Bun.gc(true);
  const loaded = rssOf(process.pid);
  for (const q of queries.slice(0, 20)) search(q);
  const lat: number[] = [];
  let hits = 0;
  for (const q of queries) {
    const t = performance.now();
    hits += search(q);
    lat.push(performance.now() - t);
  }
  lat.sort((x, y) => x - y);
  const out = {
    buildMs,
    p50: percentile(lat, 50),
    p95: percentile(lat, 95),
    hits,
    rss: rssOf(process.pid),
    grown: loaded - before,
    bytes,
  };
  if (dir) rmSync(dir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function recall(engine: string) {
  const p = Bun.spawn([process.execPath, import.meta.path, "--recall", engine], {
    stdout: "pipe",
    stderr: "inherit",
    env: { ...process.env },
  });
  const out = await new Response(p.stdout).text();
  if ((await p.exited) !== 0) throw new Error(`recall ${engine} failed`);
  return JSON.parse(out) as {
    buildMs: number;
    p50: number;
    p95: number;
    hits: number;
    rss: number;
    grown: number;
    bytes: number;
  };
}

async function main() {
  const texts = memoryTexts(WRITES);
  console.error(`bench:peers: PouchDB with ${WRITES} documents`);
  const p = await pouch(texts);
  console.error(`bench:peers: Dionysus with ${WRITES} memories`);
  const d = await dionysus(texts);
  console.error(`bench:peers: recall over ${RECALL_N} memories`);
  const s = await recall("sqlite");
  const m = await recall("minisearch");
  const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}×`;
  const lines = [
    `### Peers, ${new Date().toISOString().slice(0, 10)} (bench:peers)`,
    "",
    `2-core shared VM, loaded by parallel work; bun ${Bun.version}; node ${Bun.spawnSync(["node", "--version"], { stdout: "pipe" }).stdout.toString().trim()}; PouchDB 9 and pouchdb-server 4.2 on LevelDB; Dionysus edge on SQLite, VPS on PostgreSQL. All on 127.0.0.1, in one run.`,
    "",
    "| | Dionysus | PouchDB | Dionysus ÷ PouchDB |",
    "| --- | --- | --- | --- |",
    `| ${WRITES} offline writes up (edge queue drain / replicate local → server) | ${secs(d.drainMs)} | ${secs(p.drainMs)} | ${ratio(d.drainMs, p.drainMs)} |`,
    `| new device holding all ${WRITES} (login / replicate server → fresh) | ${secs(d.bootstrapMs)} | ${secs(p.bootstrapMs)} | ${ratio(d.bootstrapMs, p.bootstrapMs)} |`,
    `| client RSS after (edge daemon / node process) | ${mb(d.edgeRss)} (peak ${mb(d.edgePeak)}; new device ${mb(d.newRss)}) | ${mb(p.rss)} | ${ratio(d.edgeRss, p.rss)} |`,
    `| server RSS after (vps serve / pouchdb-server) | ${mb(d.vpsRss)} (peak ${mb(d.vpsPeak)}) | ${mb(p.serverRss)} (peak ${mb(p.serverPeak)}) | ${ratio(d.vpsRss, p.serverRss)} |`,
    "",
    `| local recall, ${RECALL_N} memories, ${QUERIES} queries | Dionysus (SQLite FTS5) | MiniSearch 7 | Dionysus ÷ MiniSearch |`,
    "| --- | --- | --- | --- |",
    `| query p50 | ${s.p50.toFixed(2)} ms | ${m.p50.toFixed(2)} ms | ${ratio(s.p50, m.p50)} |`,
    `| query p95 | ${s.p95.toFixed(2)} ms | ${m.p95.toFixed(2)} ms | ${ratio(s.p95, m.p95)} |`,
    `| build (store.create each, on tmpfs / addAll) | ${secs(s.buildMs)} | ${secs(m.buildMs)} | ${ratio(s.buildMs, m.buildMs)} |`,
    `| process RSS with the index loaded | ${mb(s.rss)} (+ ${mb(s.bytes)} on disk) | ${mb(m.rss)} | ${ratio(s.rss, m.rss)} |`,
    `| RSS grown by loading | ${mb(s.grown)} | ${mb(m.grown)} | - |`,
  ];
  console.log(lines.join("\n"));
}

if (process.argv[2] === "--recall") await recallChild(process.argv[3]!);
else await main();
