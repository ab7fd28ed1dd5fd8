/**
 * Test harness for end-to-end tests: real `dionysus` processes (run from source with the same
 * Bun that runs the tests), real sockets, throwaway data dirs and PostgreSQL databases.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Client } from "pg";

export const repoRoot = resolve(import.meta.dir, "../..");
export const cliEntry = join(repoRoot, "src/cli/main.ts");
export const bun = process.execPath;

/** A fresh temporary directory; removed by the returned cleanup. */
export function tempDir(prefix = "dionysus-test-"): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
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

/** Runs `dionysus ARGS...` to completion. */
export async function runCli(
  args: string[],
  opts: { env?: Record<string, string>; input?: string | Uint8Array; timeoutMs?: number } = {},
): Promise<CliResult> {
  const proc = Bun.spawn([bun, cliEntry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, NO_COLOR: "1", ...opts.env },
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
  drop(): Promise<void>;
}

/**
 * A fresh PostgreSQL database on the server of TEST_DATABASE_URL, named `<prefix>_<random>`;
 * `drop()` removes it (also with connections still open).
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
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

/** {@link createTestDatabase} with the default prefix. */
export function createPgDatabase(): Promise<TestDatabase> {
  return createTestDatabase();
}
