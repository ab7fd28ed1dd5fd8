/**
 * A small "cluster" for sync tests: one real VPS process on a fresh PostgreSQL database, one
 * user with an API key, and edge daemons (real `dionysus serve` processes) on their own data
 * dirs and ports, logged in with that key.
 */
import { Database } from "bun:sqlite";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { dbPath } from "../../src/edge/daemon-file.ts";
import {
  aliceKey,
  type CliResult,
  createPgDatabase,
  type Daemon,
  edgeAuth,
  freePort,
  runCli,
  startDaemon,
  tempDir,
} from "./harness.ts";

export interface EdgeDevice {
  name: string;
  dataDir: string;
  port: number;
  url: string;
  /** Starts (or restarts) the device's daemon. */
  start(env?: Record<string, string>): Promise<void>;
  /** Stops the daemon with `signal` (SIGTERM: clean; SIGKILL: a crash). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  running(): boolean;
  /** The daemon's process id (undefined when stopped). */
  pid(): number | undefined;
  /** Calls the device's local API and parses the JSON answer. */
  api<T = unknown>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  cli(args: string[], input?: string): Promise<CliResult>;
  login(): Promise<void>;
  /** Removes the data dir (a wiped device). The daemon must be stopped. */
  wipe(): void;
  output(): string;
}

/** Runs one full sync cycle on `dev` through its CLI (`dionysus sync`); throws if it fails. */
export async function syncNow(dev: EdgeDevice): Promise<void> {
  const r = await dev.cli(["sync", "--json"]);
  if (r.code !== 0) throw new Error(`dionysus sync on ${dev.name} failed: ${r.stderr}`);
}

export interface Cluster {
  vpsUrl: string;
  databaseUrl: string;
  apiKey: string;
  startVps(env?: Record<string, string>): Promise<void>;
  stopVps(signal?: NodeJS.Signals): Promise<void>;
  /** Whether the VPS process is running (started and not stopped since). */
  vpsRunning(): boolean;
  /** Everything the VPS process printed since it last started (JSON log lines on stdout). */
  vpsOutput(): string;
  /** Starts a device (a `dionysus serve` process) and, unless `login: false`, logs it in. */
  device(
    name: string,
    env?: Record<string, string>,
    opts?: { login?: boolean; seed?: (dataDir: string) => void; vpsUrl?: string },
  ): Promise<EdgeDevice>;
  /** Runs SQL on the VPS's PostgreSQL database (to observe what the VPS stored). */
  sql<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<T[]>;
  /** Live memories the VPS holds for the user, by id → content (read through a fresh pull). */
  vpsMemories(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

export async function createCluster(opts: { vpsEnv?: Record<string, string> } = {}): Promise<Cluster> {
  const db = await createPgDatabase();
  const root = tempDir("dionysus-cluster-");
  const vpsDir = join(root.path, "vps");
  const vpsPort = freePort();
  const vpsUrl = `http://127.0.0.1:${vpsPort}`;
  let vps: Daemon | undefined;
  const devices: EdgeDevice[] = [];
  const dbArgs = ["--database-url", db.url, "--data-dir", vpsDir];

  const startVps = async (env: Record<string, string> = {}) => {
    vps = await startDaemon(["vps", "serve", "--port", String(vpsPort), "--host", "127.0.0.1", ...dbArgs], {
      port: vpsPort,
      env: { ...opts.vpsEnv, ...env },
      timeoutMs: 60_000,
    });
  };
  await startVps();
  const key = await aliceKey(vpsDir);

  const cluster: Cluster = {
    vpsUrl,
    databaseUrl: db.url,
    apiKey: key,
    startVps,
    async stopVps(signal = "SIGTERM") {
      await vps?.stop(signal);
      vps = undefined;
    },
    vpsRunning: () => vps !== undefined,
    vpsOutput: () => vps?.output() ?? "",
    async sql<T>(text: string, params: unknown[] = []) {
      const client = new Client({ connectionString: db.url });
      await client.connect();
      try {
        return (await client.query(text, params)).rows as T[];
      } finally {
        await client.end();
      }
    },
    async device(name, env = {}, deviceOpts = {}) {
      const dataDir = join(root.path, name);
      const port = freePort();
      const url = `http://127.0.0.1:${port}`;
      let daemon: Daemon | undefined;
      const baseEnv = { DIONYSUS_SYNC_INTERVAL_S: "1", ...env };
      const dev: EdgeDevice = {
        name,
        dataDir,
        port,
        url,
        async start(extra = {}) {
          daemon = await startDaemon(["--data-dir", dataDir, "serve", "--port", String(port)], {
            port,
            env: { ...baseEnv, ...extra },
          });
        },
        async stop(signal = "SIGTERM") {
          await daemon?.stop(signal);
          daemon = undefined;
        },
        running: () => daemon !== undefined,
        pid: () => daemon?.pid,
        async api<T>(method: string, path: string, body?: unknown) {
          const res = await fetch(`${url}${path}`, {
            method,
            headers: edgeAuth(dataDir, body === undefined ? {} : { "content-type": "application/json" }),
            ...(body === undefined ? {} : { body: JSON.stringify(body) }),
          });
          const text = await res.text();
          return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
        },
        cli: (args, input) =>
          runCli(["--data-dir", dataDir, ...args], {
            env: baseEnv,
            ...(input === undefined ? {} : { input }),
          }),
        async login() {
          const r = await dev.cli([
            "login",
            deviceOpts.vpsUrl ?? vpsUrl,
            "--api-key",
            key,
            "--name",
            name,
            "--json",
          ]);
          if (r.code !== 0) throw new Error(`login of ${name} failed: ${r.stderr}`);
        },
        wipe() {
          rmSync(dataDir, { recursive: true, force: true });
        },
        output: () => daemon?.output() ?? "",
      };
      devices.push(dev);
      deviceOpts.seed?.(dataDir);
      await dev.start();
      if (deviceOpts.login !== false) await dev.login();
      return dev;
    },
    async vpsMemories() {
      const token = await fetch(`${vpsUrl}/v1/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          grant_type: "urn:dionysus:params:oauth:grant-type:api_key",
          api_key: key,
          device_id: "test-observer",
          device_name: "test observer",
        }),
      }).then((r) => r.json() as Promise<{ access_token: string }>);
      const out = new Map<string, string>();
      let since = "";
      for (;;) {
        const page = (await fetch(`${vpsUrl}/v1/sync/pull?limit=1000${since ? `&since=${since}` : ""}`, {
          headers: { authorization: `Bearer ${token.access_token}` },
        }).then((r) => r.json())) as {
          changes: { id: string; content: string; deleted: boolean }[];
          cursor: string;
          up_to_date: boolean;
        };
        for (const c of page.changes) {
          if (c.deleted) out.delete(c.id);
          else out.set(c.id, c.content);
        }
        since = page.cursor;
        if (page.up_to_date) return out;
      }
    },
    async close() {
      await Promise.all(devices.map((d) => d.stop("SIGKILL")));
      await vps?.stop("SIGKILL");
      await db.drop();
      root.cleanup();
    },
  };
  return cluster;
}

/** Live memories of a device, by id → content, read through its local API. */
export async function deviceMemories(dev: EdgeDevice): Promise<Map<string, string>> {
  const { body } = await dev.api<{ memories: { id: string; content: string }[] }>(
    "GET",
    "/v1/memories?recent=100",
  );
  return new Map(body.memories.map((m) => [m.id, m.content]));
}

/**
 * Every live memory of a device, by id → content, read straight from its database file
 * (read-only; SQLite WAL lets the test read while the daemon writes). The local API pages at 100.
 */
export function localMemories(dev: EdgeDevice): Map<string, string> {
  return withDeviceDb(dev, (db) => {
    const rows = db.query("SELECT id, content FROM memories WHERE deleted = 0").all() as {
      id: string;
      content: string;
    }[];
    return new Map(rows.map((r) => [r.id, r.content]));
  });
}

/** Runs `fn` on a read-only connection to the device's database. */
export function withDeviceDb<T>(dev: EdgeDevice, fn: (db: Database) => T): T {
  const db = new Database(dbPath(dev.dataDir), { readonly: true });
  try {
    db.run("PRAGMA busy_timeout = 5000");
    return fn(db);
  } finally {
    db.close();
  }
}
