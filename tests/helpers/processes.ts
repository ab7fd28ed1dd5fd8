/** Real `dionysus` processes for e2e tests, always killed afterwards. */
import type { Subprocess } from "bun";

const ROOT = new URL("../..", import.meta.url).pathname;
const BUN = process.execPath;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `bun src/cli/main.ts ...args` to completion. */
export async function runCli(
  args: string[],
  opts: { stdin?: string; env?: Record<string, string> } = {},
): Promise<CliResult> {
  const p = Bun.spawn([BUN, "src/cli/main.ts", ...args], {
    cwd: ROOT,
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, DATABASE_URL: "", ...opts.env },
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
}

export interface VpsProcess {
  proc: Subprocess;
  url: string;
  /** Every stdout line so far (JSON logs). */
  lines: string[];
  stop(): Promise<void>;
}

/** Starts `vps serve --port 0` and waits for its "vps listening" log line. */
export async function startVpsProcess(args: string[], timeoutMs = 60_000): Promise<VpsProcess> {
  const proc = Bun.spawn(
    [BUN, "src/cli/main.ts", "vps", "serve", "--port", "0", "--host", "127.0.0.1", ...args],
    {
      cwd: ROOT,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, DATABASE_URL: "" },
    },
  );
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
