/** Running the real CLI and daemon as processes, on temporary data dirs, with no network. */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = resolve(import.meta.dir, "../..");
const BUN = process.execPath;
const MAIN = join(ROOT, "src/cli/main.ts");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment for child processes: no DIONYSUS_* leaking in from the caller. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith("DIONYSUS_")) env[k] = v;
  return { ...env, NO_COLOR: "1", ...extra };
}

export async function cli(
  args: string[],
  opts: { stdin?: string | Uint8Array; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const proc = Bun.spawn([BUN, MAIN, ...args], {
    cwd: ROOT,
    env: cleanEnv(opts.env),
    stdin:
      opts.stdin === undefined
        ? "ignore"
        : typeof opts.stdin === "string"
          ? new TextEncoder().encode(opts.stdin)
          : opts.stdin,
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

export interface ServeHandle {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  port: number;
  pid: number;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

/** Starts `dionysus serve --port 0 --json` and waits for its announcement line. */
export async function serve(dataDir: string, extraArgs: string[] = []): Promise<ServeHandle> {
  const proc = Bun.spawn([BUN, MAIN, "serve", "--port", "0", "--json", "--data-dir", dataDir, ...extraArgs], {
    cwd: ROOT,
    env: cleanEnv(),
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
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

/** A temporary data dir, and cleanup that also stops any daemon left running. */
export function scratch() {
  const dirs: string[] = [];
  const daemons: ServeHandle[] = [];
  return {
    dir(): string {
      const d = mkdtempSync(join(tmpdir(), "dionysus-e2e-"));
      dirs.push(d);
      return d;
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
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
    },
  };
}
