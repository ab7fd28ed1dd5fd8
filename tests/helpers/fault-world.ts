/**
 * The pieces the fault tests under tests/faults/ share: a VPS process (`dionysus vps serve`) on a
 * PostgreSQL database the test chooses, listening on the address the test chooses, one user with
 * an API key; edge daemons as real processes (optionally inside a network namespace); and the
 * end-of-fault checks, read from the stores themselves: every acknowledged write on the VPS and on
 * every device, none stored twice (tests/helpers/write-audit.ts), queues drained, replicas equal.
 */
import { Database } from "bun:sqlite";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { Client } from "pg";
import { dbPath } from "../../src/edge/daemon-file.ts";
import {
  aliceKey,
  bun,
  cleanEnv,
  cliEntry,
  cliJson,
  edgeAuth,
  eventually,
  freePort,
  repoRoot,
} from "./harness.ts";
import { installWriteAudit, readWriteAudit } from "./write-audit.ts";

export interface Vps {
  url: string;
  databaseUrl: string;
  apiKey: string;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  running(): boolean;
  output(): string;
}

/** A process whose output is collected, started with `argv`. */
function spawnCollected(argv: string[], env: Record<string, string>) {
  const proc = Bun.spawn(argv, { cwd: repoRoot, env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let out = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) out += dec.decode(chunk, { stream: true });
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  return { proc, output: () => out };
}

async function stopProc(proc: Subprocess, signal: NodeJS.Signals): Promise<void> {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  await proc.exited;
  clearTimeout(timer);
}

/** Polls `GET url/health` (from this namespace) until it answers 200. */
async function healthy(url: string, proc: Subprocess, output: () => string, timeoutMs = 60_000) {
  await eventually(
    async () => {
      if (proc.exitCode !== null) throw new Error(`exited ${proc.exitCode}:\n${output()}`);
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
      return r.ok ? true : undefined;
    },
    timeoutMs,
    `${url} to answer /health`,
  );
}

/** Starts a VPS on `databaseUrl`, listening on `host`, with one user `alice` and an API key. */
export async function startVps(opts: {
  databaseUrl: string;
  dataDir: string;
  host?: string;
  env?: Record<string, string>;
}): Promise<Vps> {
  const host = opts.host ?? "127.0.0.1";
  const port = freePort();
  const url = `http://${host}:${port}`;
  const dbArgs = ["--database-url", opts.databaseUrl, "--data-dir", opts.dataDir];
  let current: ReturnType<typeof spawnCollected> | undefined;
  const env = cleanEnv({ DATABASE_URL: "", DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "100000", ...opts.env });
  const vps: Vps = {
    url,
    databaseUrl: opts.databaseUrl,
    apiKey: "",
    async start() {
      current = spawnCollected(
        [bun, cliEntry, "vps", "serve", "--port", String(port), "--host", host, ...dbArgs],
        env,
      );
      await healthy(url, current.proc, current.output);
    },
    async stop(signal = "SIGTERM") {
      if (current) await stopProc(current.proc, signal);
      current = undefined;
    },
    running: () => current !== undefined && current.proc.exitCode === null,
    output: () => current?.output() ?? "",
  };
  await vps.start();
  await installWriteAudit(opts.databaseUrl);
  vps.apiKey = host === "127.0.0.1" ? await aliceKey(opts.dataDir) : await aliceKeyByCli(dbArgs);
  return vps;
}

/** User `alice` and an API key through the CLI (`vps user add`, `vps key create`) on the database. */
async function aliceKeyByCli(dbArgs: string[]): Promise<string> {
  await cliJson(["vps", "user", "add", "alice", "--password", "correct horse battery", ...dbArgs]);
  return (await cliJson<{ key: string }>(["vps", "key", "create", "alice", ...dbArgs])).key;
}

export interface Edge {
  name: string;
  dataDir: string;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  login(vpsUrl: string, apiKey: string): Promise<void>;
  /** Calls the local API (through a client process in the namespace, when there is one). */
  api<T = unknown>(
    requests: { method: string; path: string; body?: unknown }[],
  ): Promise<{ status: number; body: T }[]>;
  output(): string;
}

/**
 * An edge daemon on `dataDir`. With `exec` (a namespace's command prefix) it runs inside that
 * namespace, and the test reaches its loopback-only API through tests/helpers/edge-client.ts
 * started there.
 */
export function edge(
  name: string,
  dataDir: string,
  opts: { exec?: (argv: string[]) => string[]; env?: Record<string, string> } = {},
): Edge {
  const wrap = opts.exec ?? ((a: string[]) => a);
  const port = freePort();
  const url = `http://127.0.0.1:${port}`;
  // The retry backoff and the realtime reconnect at a tenth of their length (1 s, 6 s, 30 s; 0.1 s
  // doubling to 3 s): these tests are about what arrives after a fault, not when the engine retries
  // (tests/faults/sync-faults.test.ts checks the real schedule), and need not wait out 10 s and 60 s.
  const env = cleanEnv({
    DIONYSUS_SYNC_INTERVAL_S: "2",
    DIONYSUS_DEBUG_SYNC_RETRY_SCALE: "0.1",
    ...opts.env,
  });
  let current: ReturnType<typeof spawnCollected> | undefined;
  const api: Edge["api"] = async <T>(requests: { method: string; path: string; body?: unknown }[]) => {
    if (!opts.exec) {
      const out: { status: number; body: T }[] = [];
      for (const r of requests) {
        const res = await fetch(`${url}${r.path}`, {
          method: r.method,
          headers: edgeAuth(dataDir, r.body === undefined ? {} : { "content-type": "application/json" }),
          ...(r.body === undefined ? {} : { body: JSON.stringify(r.body) }),
        });
        const text = await res.text();
        out.push({ status: res.status, body: (text ? JSON.parse(text) : null) as T });
      }
      return out;
    }
    const argv = wrap([
      bun,
      join(repoRoot, "tests/helpers/edge-client.ts"),
      url,
      dataDir,
      JSON.stringify(requests),
    ]);
    const p = Bun.spawn(argv, { cwd: repoRoot, env, stdout: "pipe", stderr: "pipe", timeout: 60_000 });
    const [stdout, stderr, code] = await Promise.all([
      new Response(p.stdout).text(),
      new Response(p.stderr).text(),
      p.exited,
    ]);
    if (code !== 0) throw new Error(`edge-client in the namespace exited ${code}: ${stderr}`);
    return JSON.parse(stdout) as { status: number; body: T }[];
  };
  return {
    name,
    dataDir,
    async start() {
      current = spawnCollected(
        wrap([bun, cliEntry, "--data-dir", dataDir, "serve", "--port", String(port)]),
        env,
      );
      const c = current;
      await eventually(
        async () => {
          if (c.proc.exitCode !== null) throw new Error(`${name} exited ${c.proc.exitCode}:\n${c.output()}`);
          const [r] = await api([{ method: "GET", path: "/health" }]);
          return r!.status === 200 ? true : undefined;
        },
        30_000,
        `${name} to start`,
      );
    },
    async stop(signal = "SIGTERM") {
      if (current) await stopProc(current.proc, signal);
      current = undefined;
    },
    async login(vpsUrl, apiKey) {
      const argv = wrap([
        bun,
        cliEntry,
        "--data-dir",
        dataDir,
        "login",
        vpsUrl,
        "--api-key",
        apiKey,
        "--name",
        name,
        "--json",
      ]);
      const p = Bun.spawn(argv, { cwd: repoRoot, env, stdout: "pipe", stderr: "pipe", timeout: 60_000 });
      const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited]);
      if (code !== 0) throw new Error(`login of ${name} exited ${code}: ${stderr}`);
    },
    api,
    output: () => current?.output() ?? "",
  };
}

/** Writes `contents` on `dev` through its local API; returns id → content of the acknowledged (201) ones. */
export async function write(dev: Edge, contents: string[]): Promise<Map<string, string>> {
  const answers = await dev.api<{ id: string; content: string }>(
    contents.map((content) => ({ method: "POST", path: "/v1/memories", body: { content } })),
  );
  const acked = new Map<string, string>();
  for (const a of answers) if (a.status === 201) acked.set(a.body.id, a.body.content);
  return acked;
}

export interface EdgeState {
  memories: Map<string, string>;
  queue: { queued: number; syncing: number; failed: number };
}

/** A device's live memories and queue, read from its database file (read-only, beside the daemon). */
export function edgeState(dataDir: string): EdgeState {
  const db = new Database(dbPath(dataDir), { readonly: true });
  try {
    db.run("PRAGMA busy_timeout = 5000");
    const rows = db.query("SELECT id, content FROM memories WHERE deleted = 0").all() as {
      id: string;
      content: string;
    }[];
    const q = db.query("SELECT status, count(*) AS n FROM sync_queue GROUP BY status").all() as {
      status: string;
      n: number;
    }[];
    const n = (s: string) => q.find((r) => r.status === s)?.n ?? 0;
    return {
      memories: new Map(rows.map((r) => [r.id, r.content])),
      queue: { queued: n("queued"), syncing: n("syncing"), failed: n("failed") },
    };
  } finally {
    db.close();
  }
}

/** The VPS's live memories, read from its database. */
export async function vpsMemories(databaseUrl: string): Promise<Map<string, string>> {
  const c = new Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const r = await c.query<{ id: string; content: string }>(
      "SELECT id, content FROM memories WHERE NOT deleted",
    );
    return new Map(r.rows.map((x) => [x.id, x.content]));
  } finally {
    await c.end();
  }
}

const sameMap = (a: Map<string, string>, b: Map<string, string>) =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/**
 * Waits until the fault has healed: every device's queue is empty (nothing queued, in flight or
 * failed), every device and the VPS hold the same memories, and those include every acknowledged
 * write with its content. Then checks that no version was stored twice on the VPS and that the
 * VPS stored exactly one version per acknowledged write (`versions`, when every write was a
 * create of its own memory). Returns the converged set.
 */
export async function expectHealed(
  vps: { databaseUrl: string },
  devices: Edge[],
  acked: Map<string, string>,
  timeoutMs: number,
  versions?: number,
): Promise<Map<string, string>> {
  let last = "";
  const converged = await eventually(
    async () => {
      const onVps = await vpsMemories(vps.databaseUrl);
      const states = devices.map((d) => edgeState(d.dataDir));
      const missing = [...acked].filter(([id, c]) => onVps.get(id) !== c).length;
      const queues = states.map((s) => s.queue.queued + s.queue.syncing + s.queue.failed);
      last = `missing on VPS ${missing}, queues ${queues.join("/")}, sizes ${onVps.size}/${states.map((s) => s.memories.size).join("/")}`;
      if (missing > 0 || queues.some((q) => q > 0)) return undefined;
      return states.every((s) => sameMap(s.memories, onVps)) ? onVps : undefined;
    },
    timeoutMs,
    "the queues to drain and every replica to converge",
  ).catch((err) => {
    throw new Error(`${(err as Error).message} (${last})`);
  });
  const audit = await readWriteAudit(vps.databaseUrl);
  if (audit.twice.length > 0)
    throw new Error(`versions stored twice: ${JSON.stringify(audit.twice.slice(0, 5))}`);
  if (versions !== undefined && audit.stored !== versions)
    throw new Error(`the VPS stored ${audit.stored} versions; ${versions} writes were made`);
  return converged;
}
