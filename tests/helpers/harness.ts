/**
 * Test harness for end-to-end tests: real `dionysus` processes (run from source with the same
 * Bun that runs the tests), real sockets, throwaway data dirs and PostgreSQL databases.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { Client } from "pg";

export const repoRoot = resolve(import.meta.dir, "../..");
export const cliEntry = join(repoRoot, "src/cli/main.ts");
export const bun = process.execPath;

/** A fresh temporary directory; removed by the returned cleanup. */
export function tempDir(prefix = "dionysus-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** The edge daemon's API token (`<dataDir>/api-token`, written by `dionysus serve`). */
export function edgeToken(dataDir: string): string {
  return readFileSync(join(dataDir, "api-token"), "utf8").trim();
}

/** `Authorization: Bearer <token>` for the edge daemon of `dataDir`, plus `extra` headers. */
export function edgeAuth(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { Authorization: `Bearer ${edgeToken(dataDir)}`, ...extra };
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = server.port!;
  server.stop(true);
  return port;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for child processes without any DIONYSUS_* variable of the caller's. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("DIONYSUS_")) env[k] = v;
  return { ...env, NO_COLOR: "1", ...extra };
}

/**
 * Runs `dionysus ARGS...` to completion. The environment is `baseEnv` (the caller's by default)
 * with NO_COLOR, no DATABASE_URL (a stray one must not point a run at a real database) and `env`.
 */
export async function runCli(
  args: string[],
  opts: {
    env?: Record<string, string>;
    input?: string | Uint8Array;
    timeoutMs?: number;
    baseEnv?: Record<string, string | undefined>;
  } = {},
): Promise<CliResult> {
  const proc = Bun.spawn([bun, cliEntry, ...args], {
    cwd: repoRoot,
    env: { ...(opts.baseEnv ?? process.env), NO_COLOR: "1", DATABASE_URL: "", ...opts.env },
    stdin: opts.input === undefined ? "ignore" : new Blob([opts.input]),
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 60_000,
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

/** Like runCli, but fails the test with the process's output unless it exits 0; parses --json output. */
export async function cliJson<T = unknown>(
  args: string[],
  opts: Parameters<typeof runCli>[1] = {},
): Promise<T> {
  const r = await runCli([...args, "--json"], opts);
  if (r.code !== 0) throw new Error(`dionysus ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

export interface Daemon {
  url: string;
  port: number;
  pid: number;
  output: () => string;
  /** Sends a signal and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<number>;
}

/** Starts a long-running `dionysus` process and waits until `healthPath` answers 200. */
export async function startDaemon(
  args: string[],
  opts: { port: number; env?: Record<string, string>; healthPath?: string; timeoutMs?: number },
): Promise<Daemon> {
  const proc = Bun.spawn([bun, cliEntry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) out += dec.decode(chunk, { stream: true });
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  const url = `http://127.0.0.1:${opts.port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`process exited ${proc.exitCode} before healthy:\n${out}`);
    try {
      const res = await fetch(`${url}${opts.healthPath ?? "/health"}`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error(`process not healthy in time:\n${out}`);
    }
    await Bun.sleep(50);
  }
  return {
    url,
    port: opts.port,
    pid: proc.pid,
    output: () => out,
    stop: async (signal = "SIGTERM") => {
      if (proc.exitCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const code = await proc.exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function eventually<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 15_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(100);
  }
}

/** The PostgreSQL server tests may create databases on (scripts/test.sh sets it). */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL;

export interface TestDatabase {
  url: string;
  /** `onWait` is called once if sessions are still closing when the drop starts (for tests). */
  drop(opts?: { onWait?: () => void }): Promise<void>;
}

/** How long `drop()` waits for the database's sessions to end before it forces them out. */
const DROP_WAIT_MS = 5_000;

/**
 * A fresh PostgreSQL database on the server of TEST_DATABASE_URL, named `<prefix>_<random>`;
 * `drop()` removes it (also with connections still open).
 *
 * A pool's `end()` resolves before its connections are gone (pg-pool ends each client without
 * waiting for it). Forcing the drop at once would kill those sessions mid-goodbye: PostgreSQL
 * sends them 57P01 and the closing clients report it as unhandled errors. So `drop()` first waits
 * (a few seconds at most) for the database's sessions to end, and only then forces what is left.
 */
export async function createTestDatabase(
  prefix = "dionysus_t",
  base = TEST_DATABASE_URL,
): Promise<TestDatabase> {
  if (!base) throw new Error("TEST_DATABASE_URL is not set: run the suite with `npm test` (scripts/test.sh)");
  const admin = async (statement: string) => {
    const c = new Client({ connectionString: base });
    await c.connect();
    try {
      await c.query(statement);
    } finally {
      await c.end();
    }
  };
  const name = `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await admin(`create database ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const drop = async (opts: { onWait?: () => void } = {}) => {
    const c = new Client({ connectionString: base });
    await c.connect();
    try {
      const deadline = Date.now() + DROP_WAIT_MS;
      let waited = false;
      for (;;) {
        const r = await c.query<{ n: number }>(
          "select count(*)::int as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
          [name],
        );
        if (r.rows[0]!.n === 0 || Date.now() > deadline) break;
        if (!waited) opts.onWait?.();
        waited = true;
        await Bun.sleep(20);
      }
      await c.query(`drop database if exists ${name} with (force)`);
    } finally {
      await c.end();
    }
  };
  return { url: url.toString(), drop };
}

/** {@link createTestDatabase} with the default prefix. */
export function createPgDatabase(): Promise<TestDatabase> {
  return createTestDatabase();
}

/**
 * Adds user `alice` (password "correct horse battery") and an API key for her on the running VPS
 * of `vpsDataDir`, through its loopback admin API (`<data dir>/vps.json`), which is what `dionysus
 * vps user add` / `vps key create` use while a server holds the data dir; returns the key. Two
 * requests instead of two CLI processes (seconds each on a busy machine); the admin commands
 * themselves are tested in tests/e2e/admin-cli.test.ts.
 */
export async function aliceKey(vpsDataDir: string): Promise<string> {
  const server = JSON.parse(readFileSync(join(vpsDataDir, "vps.json"), "utf8")) as {
    admin_url: string;
    admin_token: string;
  };
  const call = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${server.admin_url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${server.admin_token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`admin API ${path} answered ${res.status}: ${text}`);
    return JSON.parse(text) as T;
  };
  await call("/admin/users", { name: "alice", password: "correct horse battery" });
  return (await call<{ key: string }>("/admin/keys", { user: "alice" })).key;
}

export interface VpsProcess {
  proc: Subprocess;
  url: string;
  /** Every stdout line so far (JSON logs). */
  lines: string[];
  stop(): Promise<void>;
}

/** Starts `vps serve --port 0` (with `env` added to its environment) and waits for its
 * "vps listening" log line. */
export async function startVpsProcess(
  args: string[],
  timeoutMs = 60_000,
  env: Record<string, string> = {},
): Promise<VpsProcess> {
  const proc = Bun.spawn([bun, cliEntry, "vps", "serve", "--port", "0", "--host", "127.0.0.1", ...args], {
    cwd: repoRoot,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DATABASE_URL: "", ...env },
  });
  const lines: string[] = [];
  let url: string | undefined;
  const reader = proc.stdout.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const pump = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += dec.decode(value, { stream: true });
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        try {
          const e = JSON.parse(line) as { msg?: string; url?: string };
          if (e.msg === "vps listening" && e.url) url = e.url;
        } catch {}
        i = buf.indexOf("\n");
      }
    }
  })();
  const stop = async () => {
    if (proc.exitCode === null) proc.kill("SIGTERM");
    const exited = await Promise.race([proc.exited.then(() => true), Bun.sleep(5000).then(() => false)]);
    if (!exited) proc.kill("SIGKILL");
    await proc.exited;
    await pump.catch(() => {});
  };
  const deadline = Date.now() + timeoutMs;
  while (!url && Date.now() < deadline && proc.exitCode === null) await Bun.sleep(50);
  if (!url) {
    const err = await new Response(proc.stderr).text().catch(() => "");
    await stop();
    throw new Error(`vps serve did not start: ${err}`);
  }
  return { proc, url, lines, stop };
}

export interface ServeHandle {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  port: number;
  pid: number;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts `dionysus serve --port 0 --json` (no DIONYSUS_* env) and waits for its announcement line. */
export async function serve(dataDir: string, extraArgs: string[] = []): Promise<ServeHandle> {
  const proc = Bun.spawn(
    [bun, cliEntry, "serve", "--port", "0", "--json", "--data-dir", dataDir, ...extraArgs],
    {
      cwd: repoRoot,
      env: cleanEnv(),
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  const reader = proc.stdout.getReader();
  let buf = "";
  const deadline = Date.now() + 15_000;
  while (!buf.includes("\n")) {
    if (Date.now() > deadline) {
      proc.kill("SIGKILL");
      throw new Error("serve did not announce itself");
    }
    const { value, done } = await reader.read();
    if (done) {
      const err = await new Response(proc.stderr).text();
      throw new Error(`serve exited early: ${err}`);
    }
    buf += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const info = JSON.parse(buf.slice(0, buf.indexOf("\n"))) as { url: string; port: number; pid: number };
  return {
    proc,
    ...info,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return proc.exited;
    },
  };
}

/** Temporary data dirs, and a cleanup that also kills any tracked daemon left running. */
export function scratch() {
  const dirs: Array<() => void> = [];
  const daemons: ServeHandle[] = [];
  return {
    dir(): string {
      const d = tempDir("dionysus-e2e-");
      dirs.push(d.cleanup);
      return d.path;
    },
    track(h: ServeHandle): ServeHandle {
      daemons.push(h);
      return h;
    },
    async cleanup() {
      for (const h of daemons.splice(0)) {
        if (h.proc.exitCode === null && h.proc.signalCode === null) h.proc.kill("SIGKILL");
        await h.proc.exited;
      }
      for (const cleanup of dirs.splice(0)) cleanup();
    },
  };
}

export interface SmallDisk {
  /** The mount point (a fresh directory under the temp dir). */
  dir: string;
  /** Fills the file system to the last byte with a file `filler`. */
  fill(): void;
  /** Removes that file. */
  unfill(): void;
  /** Unmounts and removes the mount point. */
  unmount(): void;
}

/**
 * A small tmpfs of our own, for full-disk tests: undefined unless this process may mount one
 * (root, and a kernel that allows it here). Mount it inside the test and unmount it in a
 * `finally`, so a filtered or failed run never leaves a mount behind.
 */
export function mountSmallDisk(size = "2m"): SmallDisk | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "dionysus-disk-"));
  if (Bun.spawnSync(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]).exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const filler = join(dir, "filler");
  return {
    dir,
    fill() {
      const fd = openSync(filler, "a");
      try {
        for (const chunk of [64 * 1024, 4096, 512, 1].map((n) => Buffer.alloc(n))) {
          for (;;) {
            try {
              writeSync(fd, chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw err;
            }
          }
        }
      } finally {
        closeSync(fd);
      }
    },
    unfill() {
      rmSync(filler, { force: true });
    },
    unmount() {
      Bun.spawnSync(["umount", "-l", dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether {@link mountSmallDisk} works here (mounts and unmounts one at once). */
export function canMountSmallDisk(): boolean {
  const disk = mountSmallDisk("64k");
  disk?.unmount();
  return disk !== undefined;
}
