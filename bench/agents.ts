/**
 * Load simulator: N edge agents against one VPS (`dionysus vps serve`, a real process) on a fresh
 * PostgreSQL database, everything on 127.0.0.1.
 *
 *   bun run bench:agents            # 10,000 agents
 *   bun run bench:agents 2000       # fewer
 *   BENCH_DURATION_S=60 BENCH_CYCLE_S=30 BENCH_PUSH_SHARE=0.25 bun run bench:agents
 *
 * Each agent is a device of a user (4 devices per user), signed in with the real API-key grant.
 * It holds `GET /v1/events` open and runs the protocol of src/core/protocol/sync.ts (answers are
 * parsed with its zod schemas): every BENCH_CYCLE_S seconds a cycle, pull until up to date and, in
 * BENCH_PUSH_SHARE of the cycles, push one new memory and pull again; on each `changes` poke, a
 * pull. Cycles start at random phases, so the N agents' cycles are spread over the run. The
 * agents run in several client processes (a lean loop on Bun's fetch); they share the 2 cores
 * with the server, which is a limit of the measurement, reported with the figures.
 *
 * Reports: connections held, requests/s, p50/p95/p99 per endpoint, errors, the server's RSS and
 * CPU, and the time from a push until every other device of the user has its poke. Every loop
 * stops by itself after BENCH_DURATION_S; the server and the database are removed at the end.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { formatHlc } from "../src/core/hlc.ts";
import { PullResponse, PushResponse } from "../src/core/protocol/sync.ts";
import { VERSION } from "../src/core/version.ts";

const CYCLE_S = Number(process.env.BENCH_CYCLE_S ?? 30);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 60);
const PUSH_SHARE = Number(process.env.BENCH_PUSH_SHARE ?? 0.25);
const DEVICES_PER_USER = 4;
const AGENTS_PER_CLIENT = Number(process.env.BENCH_AGENTS_PER_CLIENT ?? 2500);
/** File descriptors: the server holds one per stream, each client one per agent, plus slack. */
const FD_LIMIT = 20_000;

interface Agent {
  user: string;
  device: string;
  token: string;
}

type Sample = { ep: string; ms: number };
interface ClientReport {
  connected: number;
  held: number;
  samples: Sample[];
  errors: Record<string, number>;
  pushes: [string, number][];
  pokes: [string, string, number][];
  requests: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! : Number.NaN;

// ---------------------------------------------------------------------------------------------
// Client process: runs a slice of the agents.

async function client(file: string): Promise<void> {
  const { url, agents, startAt, stopAt } = JSON.parse(readFileSync(file, "utf8")) as {
    url: string;
    agents: Agent[];
    startAt: number;
    stopAt: number;
  };
  const report: ClientReport = {
    connected: 0,
    held: 0,
    samples: [],
    errors: {},
    pushes: [],
    pokes: [],
    requests: 0,
  };
  const err = (kind: string) => {
    report.errors[kind] = (report.errors[kind] ?? 0) + 1;
  };
  const stop = new AbortController();
  /** Aborted at the end of the run, or after 30 s for one request. */
  const signal = () => AbortSignal.any([stop.signal, AbortSignal.timeout(30_000)]);
  const timed = async (ep: string, req: () => Promise<Response>) => {
    const t = performance.now();
    report.requests++;
    const res = await req();
    const body = await res.text();
    if (!res.ok) throw new Error(`${ep} ${res.status}`);
    report.samples.push({ ep, ms: performance.now() - t });
    return JSON.parse(body) as unknown;
  };
  const streams: Promise<void>[] = [];
  const loops: Promise<void>[] = [];
  for (const a of agents) {
    const auth = { authorization: `Bearer ${a.token}` };
    let cursor = "";
    let counter = 0;
    let lastMs = 0;
    let pulling: Promise<void> | undefined;
    let again = false;
    const pullAll = async () => {
      for (let page = 0; page < 100; page++) {
        const r = PullResponse.parse(
          await timed("pull", () =>
            fetch(`${url}/v1/sync/pull?limit=500${cursor ? `&since=${cursor}` : ""}`, {
              headers: auth,
              signal: signal(),
            }),
          ),
        );
        if (r.status === "refetch") {
          cursor = "";
          continue;
        }
        cursor = r.cursor;
        if (r.up_to_date) return;
      }
    };
    /** One pull at a time per agent; a poke during a pull asks for one more. */
    const pull = (): Promise<void> => {
      if (pulling) {
        again = true;
        return pulling;
      }
      pulling = (async () => {
        try {
          do {
            again = false;
            await pullAll();
          } while (again && !stop.signal.aborted);
        } catch (e) {
          if (!stop.signal.aborted) err(`pull: ${(e as Error).message}`);
        } finally {
          pulling = undefined;
        }
      })();
      return pulling;
    };
    const push = async () => {
      const now = Date.now();
      lastMs = Math.max(now, lastMs + 1);
      counter++;
      const at = new Date(now).toISOString();
      const body = JSON.stringify({
        mutations: [
          {
            mutation_id: counter,
            op: "create",
            id: crypto.randomUUID(),
            hlc: formatHlc({ ms: lastMs, counter: 0, node: a.device }),
            base_hlc: null,
            data: {
              content: `agent ${a.device} note ${counter}`,
              kind: "episodic",
              tags: [],
              metadata: {},
              created_at: at,
              updated_at: at,
            },
          },
        ],
      });
      report.pushes.push([a.user, now]);
      const r = PushResponse.parse(
        await timed("push", () =>
          fetch(`${url}/v1/sync/push`, {
            method: "POST",
            headers: { ...auth, "content-type": "application/json" },
            body,
            signal: signal(),
          }),
        ),
      );
      if (r.results[0]?.status !== "applied")
        err(`push: ${r.results[0]?.status} ${r.results[0]?.code ?? ""}`);
    };
    // The event stream: connected once the first bytes arrive; each `changes` event is a poke.
    streams.push(
      (async () => {
        try {
          const t = performance.now();
          report.requests++;
          const res = await fetch(`${url}/v1/events`, {
            headers: { ...auth, accept: "text/event-stream" },
            signal: stop.signal,
          });
          if (!res.ok || !res.body) throw new Error(`events ${res.status}`);
          const reader = res.body.getReader();
          const dec = new TextDecoder();
          let buf = "";
          let first = true;
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            if (first) {
              first = false;
              report.connected++;
              report.held++;
              report.samples.push({ ep: "events (first byte)", ms: performance.now() - t });
            }
            buf += dec.decode(value, { stream: true });
            let i = buf.indexOf("\n\n");
            while (i >= 0) {
              const frame = buf.slice(0, i);
              buf = buf.slice(i + 2);
              if (frame.includes("event: changes")) {
                report.pokes.push([a.user, a.device, Date.now()]);
                if (Date.now() < stopAt) void pull();
              }
              i = buf.indexOf("\n\n");
            }
          }
          report.held--;
          if (!stop.signal.aborted) err("events: stream ended early");
        } catch (e) {
          if (!stop.signal.aborted) err(`events: ${(e as Error).message}`);
          else report.held--;
        }
      })(),
    );
    // The cycle loop: a random phase, then every CYCLE_S until the end.
    loops.push(
      (async () => {
        let next = startAt + Math.random() * CYCLE_S * 1000;
        while (next < stopAt) {
          await Bun.sleep(Math.max(0, next - Date.now()));
          if (Date.now() >= stopAt) break;
          const t = performance.now();
          try {
            await pull();
            if (Math.random() < PUSH_SHARE) {
              await push();
              await pull();
            }
            report.samples.push({ ep: "cycle (pull, push, pull)", ms: performance.now() - t });
          } catch (e) {
            if (!stop.signal.aborted) err(`cycle: ${(e as Error).message}`);
          }
          next += CYCLE_S * 1000;
        }
      })(),
    );
    // Open the streams at a bounded pace: a burst of thousands of connects at once only
    // measures the accept queue.
    if (streams.length % 100 === 0) await Bun.sleep(20);
  }
  await Bun.sleep(Math.max(0, stopAt - Date.now()));
  // Cycles under way finish (each request gives up after 30 s at most).
  await Promise.race([Promise.all(loops), Bun.sleep(35_000)]);
  const heldAtEnd = report.held;
  stop.abort();
  await Promise.allSettled(streams);
  report.held = heldAtEnd;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Coordinator: database, server, users and devices, client processes, figures.

async function forEachLimit<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

function procStats(pid: number): { rss: number; ticks: number; fds: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]);
  let fds = 0;
  try {
    fds =
      Bun.spawnSync(["ls", `/proc/${pid}/fd`], { stdout: "pipe" })
        .stdout.toString()
        .split("\n").length - 1;
  } catch {}
  return { rss, ticks, fds };
}

async function coordinator(n: number): Promise<void> {
  process.env.TEST_DATABASE_URL ??= "postgres://dionysus:dionysus@127.0.0.1:5432/dionysus_test";
  const { createTestDatabase } = await import("../tests/helpers/harness.ts");
  const { readServerFile } = await import("../src/vps/server.ts");
  const db = await createTestDatabase("dionysus_agents");
  const dir = mkdtempSync(join(tmpdir(), "dionysus-agents-"));
  const entry = join(import.meta.dir, "../src/cli/main.ts");
  // The server's file-descriptor limit, raised in its own shell (soft up to the hard limit).
  const server = Bun.spawn(
    [
      "sh",
      "-c",
      `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`,
      process.execPath,
      entry,
      "vps",
      "serve",
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--database-url",
      db.url,
      "--data-dir",
      join(dir, "vps"),
    ],
    {
      env: {
        ...process.env,
        DATABASE_URL: "",
        DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "100000000",
        DIONYSUS_VPS_USER_RATE_LIMIT_PER_MIN: "100000000",
      },
      stdout: "ignore",
      stderr: "ignore",
    },
  );
  const cleanup = async () => {
    server.kill("SIGTERM");
    await server.exited;
    await db.drop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    let file = readServerFile(join(dir, "vps"));
    const deadline = Date.now() + 60_000;
    while (!file && Date.now() < deadline) {
      await Bun.sleep(100);
      file = readServerFile(join(dir, "vps"));
    }
    if (!file) throw new Error("vps serve did not start");
    const url = file.admin_url;
    const admin = async <T>(path: string, body: unknown): Promise<T> => {
      const res = await fetch(`${file!.admin_url}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${file!.admin_token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };

    // Users (no password: the bench signs in with API keys) and their devices' tokens.
    const setupStart = performance.now();
    const users = Math.ceil(n / DEVICES_PER_USER);
    const keys: string[] = new Array(users);
    await forEachLimit(
      Array.from({ length: users }, (_, i) => i),
      32,
      async (i) => {
        await admin("/admin/users", { name: `agent${i}` });
        keys[i] = (await admin<{ key: string }>("/admin/keys", { user: `agent${i}` })).key;
      },
    );
    const agents: Agent[] = new Array(n);
    await forEachLimit(
      Array.from({ length: n }, (_, i) => i),
      32,
      async (i) => {
        const u = Math.floor(i / DEVICES_PER_USER);
        const device = `agent${u}-d${i % DEVICES_PER_USER}`;
        const res = await fetch(`${url}/v1/auth/token`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            grant_type: "urn:dionysus:params:oauth:grant-type:api_key",
            api_key: keys[u],
            device_id: device,
            device_name: device,
          }),
        });
        if (!res.ok) throw new Error(`token for ${device}: ${res.status} ${await res.text()}`);
        agents[i] = {
          user: `agent${u}`,
          device,
          token: ((await res.json()) as { access_token: string }).access_token,
        };
      },
    );
    const setupS = (performance.now() - setupStart) / 1000;
    console.error(`bench:agents: ${users} users, ${n} devices signed in in ${setupS.toFixed(1)} s`);

    // Client processes: a slice of agents each. Streams open first; the run starts after a ramp.
    const clients = Math.ceil(n / AGENTS_PER_CLIENT);
    const rampS = Math.max(10, Math.ceil(n / 500));
    const startAt = Date.now() + rampS * 1000;
    const stopAt = startAt + DURATION_S * 1000;
    const procs = Array.from({ length: clients }, (_, c) => {
      const slice = agents.filter((_, i) => i % clients === c);
      const f = join(dir, `client-${c}.json`);
      writeFileSync(f, JSON.stringify({ url, agents: slice, startAt, stopAt }));
      return Bun.spawn(
        [
          "sh",
          "-c",
          `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" "$@"`,
          process.execPath,
          import.meta.path,
          "--client",
          f,
        ],
        // Bun's fetch runs at most 256 requests at once by default: every agent's stream is one.
        { stdout: "pipe", stderr: "inherit", env: { ...process.env, BUN_CONFIG_MAX_HTTP_REQUESTS: "65000" } },
      );
    });
    const outputs = procs.map((p) => new Response(p.stdout).text());

    // Server RSS and CPU over the measured window.
    await Bun.sleep(Math.max(0, startAt - Date.now()));
    const before = procStats(server.pid);
    const rss: number[] = [];
    let fdsMax = 0;
    while (Date.now() < stopAt) {
      await Bun.sleep(1000);
      const s = procStats(server.pid);
      rss.push(s.rss);
      fdsMax = Math.max(fdsMax, s.fds);
    }
    const after = procStats(server.pid);
    const cpu = (after.ticks - before.ticks) / 100 / DURATION_S;
    const reports = (await Promise.all(outputs)).map(
      (o) => JSON.parse(o.trim().split("\n").pop()!) as ClientReport,
    );

    // Figures.
    const byEp = new Map<string, number[]>();
    for (const r of reports) for (const s of r.samples) byEp.set(s.ep, [...(byEp.get(s.ep) ?? []), s.ms]);
    const errors: Record<string, number> = {};
    for (const r of reports) for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    const connected = reports.reduce((s, r) => s + r.connected, 0);
    const held = reports.reduce((s, r) => s + r.held, 0);
    const requests = [...byEp.entries()]
      .filter(([ep]) => ep === "pull" || ep === "push")
      .reduce((s, [, v]) => s + v.length, 0);
    // A poke reaching all of a user's other devices: from a push's send to the last of the
    // other devices' first poke after it.
    const pokes = new Map<string, { device: string; t: number }[]>();
    for (const r of reports)
      for (const [user, device, t] of r.pokes) pokes.set(user, [...(pokes.get(user) ?? []), { device, t }]);
    for (const list of pokes.values()) list.sort((x, y) => x.t - y.t);
    const fanout: number[] = [];
    let unreached = 0;
    for (const r of reports)
      for (const [user, t0] of r.pushes) {
        if (t0 > stopAt - 5000) continue;
        const first = new Map<string, number>();
        for (const p of pokes.get(user) ?? [])
          if (p.t >= t0 && !first.has(p.device)) first.set(p.device, p.t);
        // The pusher gets its own poke too: every device of the user.
        if (first.size < DEVICES_PER_USER) unreached++;
        else fanout.push(Math.max(...first.values()) - t0);
      }
    fanout.sort((a, b) => a - b);

    const row = (name: string, v: number[]) => {
      const s = [...v].sort((a, b) => a - b);
      return `| ${name} | ${s.length} | ${percentile(s, 50).toFixed(1)} | ${percentile(s, 95).toFixed(1)} | ${percentile(s, 99).toFixed(1)} |`;
    };
    const lines = [
      `### Load simulator, ${new Date().toISOString().slice(0, 10)} (bench:agents ${n})`,
      "",
      `2-core shared VM, loaded by parallel work; bun ${Bun.version}; dionysus ${VERSION}; ${os.cpus().length} cores; one \`vps serve\` on PostgreSQL, ${clients} client processes on the same cores. ${DURATION_S} s measured after a ${rampS} s ramp; each agent's cycle every ${CYCLE_S} s at a random phase, ${Math.round(PUSH_SHARE * 100)} % of cycles push one memory; ${users} users × ${DEVICES_PER_USER} devices; sign-in of all devices took ${setupS.toFixed(1)} s.`,
      "",
      "| figure | value |",
      "| --- | --- |",
      `| event streams connected / held at the end | ${connected} / ${held} of ${n} |`,
      `| sync requests/s (pull + push) | ${(requests / DURATION_S).toFixed(0)} |`,
      `| errors | ${
        Object.keys(errors).length
          ? Object.entries(errors)
              .map(([k, v]) => `${k}: ${v}`)
              .join("; ")
          : "none"
      } |`,
      `| server RSS median / max | ${(
        percentile(
          [...rss].sort((a, b) => a - b),
          50,
        ) /
          2 ** 20
      ).toFixed(0)} MB / ${(Math.max(...rss) / 2 ** 20).toFixed(0)} MB |`,
      `| server CPU (cores busy, of ${os.cpus().length}) | ${cpu.toFixed(2)} |`,
      `| server open file descriptors (max) | ${fdsMax} |`,
      `| poke to all of a user's devices, p50 / p95 / p99 | ${percentile(fanout, 50).toFixed(0)} / ${percentile(fanout, 95).toFixed(0)} / ${percentile(fanout, 99).toFixed(0)} ms (${fanout.length} pushes; ${unreached} not reaching every device) |`,
      "",
      "| endpoint | requests | p50 ms | p95 ms | p99 ms |",
      "| --- | --- | --- | --- | --- |",
      ...[...byEp.entries()].map(([ep, v]) => row(ep, v)),
    ];
    console.log(lines.join("\n"));
    for (const p of procs) await p.exited;
  } finally {
    await cleanup();
  }
}

if (process.argv[2] === "--client") await client(process.argv[3]!);
else {
  const n = Number(process.argv[2] ?? 10_000);
  if (!Number.isInteger(n) || n < DEVICES_PER_USER) {
    console.error(`bench:agents: N must be a whole number of at least ${DEVICES_PER_USER}`);
    process.exit(2);
  }
  await coordinator(n);
}
