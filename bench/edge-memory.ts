/**
 * The edge daemon's memory: `dionysus serve` (from source, and the compiled binary when
 * `dist/dionysus` exists or DIONYSUS_BIN names one) on a fresh data dir, not logged in to a VPS.
 * RSS idle (after start-up settles), then under load (BENCH_WRITES writes through the local API,
 * 16 at a time, then 500 keyword recalls), and where it goes: /proc's anonymous vs file-backed
 * RSS (file-backed is mostly the Bun executable's own pages), the JavaScript heap (bun:jsc
 * heapStats, via the preloaded bench/edge-memory-probe.ts on the source run), and SQLite.
 * Prints a Markdown table; appends it to bench/RESULTS.md with BENCH_RECORD=1.
 *
 *   bun run bench/edge-memory.ts
 */
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
} from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname;
const WRITES = Number(process.env.BENCH_WRITES ?? 2000);
const MB = 1024 * 1024;

interface Probe {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  jscHeapCapacity: number;
  objectCount: number;
}

const status = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0) / 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile"), hwm: kb("VmHWM") };
};

async function measure(label: string, command: string[], probe: boolean) {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-mem-"));
  const out = join(dir, "probe.jsonl");
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = Bun.spawn([...command, "serve", "--data-dir", dir, "--port", String(port)], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1", DIONYSUS_BENCH_MEMORY_OUT: out },
    stdout: "ignore",
    stderr: "ignore",
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    for (let i = 0; i < 300; i++) {
      if (
        await fetch(`${base}/health`)
          .then((r) => r.ok)
          .catch(() => false)
      )
        break;
      await Bun.sleep(100);
    }
    const auth = { authorization: `Bearer ${readFileSync(join(dir, "api-token"), "utf8").trim()}` };
    const lines = () => (existsSync(out) ? readFileSync(out, "utf8").trim().split("\n").filter(Boolean) : []);
    const report = async (): Promise<Probe | undefined> => {
      if (!probe) return undefined;
      const before = lines().length;
      proc.kill("SIGUSR2");
      for (let i = 0; i < 100 && lines().length === before; i++) await Bun.sleep(50);
      const last = lines()[before];
      return last ? (JSON.parse(last) as Probe) : undefined;
    };
    // Idle: let start-up work (the integrity check, timers) settle.
    await Bun.sleep(3000);
    const idle = status(proc.pid);
    const idleProbe = await report();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < WRITES) {
          const i = next++;
          const r = await fetch(`${base}/v1/memories`, {
            method: "POST",
            headers: { ...auth, "content-type": "application/json" },
            body: JSON.stringify({
              content: `memory ${i}: the quick brown fox ${i % 97} jumps over the lazy dog ${"lorem ipsum ".repeat(20)}`,
              tags: ["bench"],
            }),
          });
          await r.arrayBuffer();
        }
      }),
    );
    for (let i = 0; i < 500; i++) {
      const r = await fetch(`${base}/v1/recall`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body: JSON.stringify({ query: `fox ${i % 97}`, limit: 10 }),
      });
      await r.arrayBuffer();
    }
    const loaded = status(proc.pid);
    const loadedProbe = await report();
    const dbFds = readdirSync(`/proc/${proc.pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${proc.pid}/fd/${fd}`).endsWith("edge.db");
      } catch {
        return false;
      }
    }).length;
    return { label, idle, loaded, idleProbe, loadedProbe, dbFds };
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const f = (x: number) => `${x.toFixed(1)} MB`;
const runs = [
  await measure(
    "from source (`bun src/cli/main.ts serve`)",
    [process.execPath, "--preload", join(ROOT, "bench/edge-memory-probe.ts"), "src/cli/main.ts"],
    true,
  ),
];
const bin = process.env.DIONYSUS_BIN ?? join(ROOT, "dist/dionysus");
if (existsSync(bin)) runs.push(await measure(`compiled binary (${bin})`, [bin], false));

const rows: string[] = [];
for (const r of runs) {
  rows.push(
    `| ${r.label}, idle | ${f(r.idle.rss)} (anonymous ${f(r.idle.anon)}, file-backed ${f(r.idle.file)}) | ${r.idleProbe ? `JS heap ${f(r.idleProbe.heapUsed / MB)} used of ${f(r.idleProbe.jscHeapCapacity / MB)}, external ${f(r.idleProbe.external / MB)}, ${r.idleProbe.objectCount} objects` : "-"} |`,
  );
  rows.push(
    `| ${r.label}, after ${WRITES} writes + 500 recalls | ${f(r.loaded.rss)} (anonymous ${f(r.loaded.anon)}, file-backed ${f(r.loaded.file)}; peak ${f(r.loaded.hwm)}) | ${r.loadedProbe ? `JS heap ${f(r.loadedProbe.heapUsed / MB)} used of ${f(r.loadedProbe.jscHeapCapacity / MB)}, external ${f(r.loadedProbe.external / MB)}, ${r.loadedProbe.objectCount} objects` : "-"}; ${r.dbFds} open edge.db handles |`,
  );
}
const table = ["| edge daemon | RSS | breakdown |", "| --- | --- | --- |", ...rows].join("\n");
const text = `\n### Edge daemon memory — ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC, Bun ${Bun.version}, load average ${loadavg()[0]!.toFixed(1)}\n\n${table}\n`;
process.stdout.write(`${text}\n`);
if (process.env.BENCH_RECORD === "1") appendFileSync(join(ROOT, "bench/RESULTS.md"), text);
