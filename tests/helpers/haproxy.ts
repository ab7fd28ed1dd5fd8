/**
 * HAProxy (Debian's `haproxy` package) in front of several `vps serve` processes, for the
 * multi-instance tests: a generated config in a temporary directory, free ports on 127.0.0.1,
 * run in the foreground (`-db`) as a child of the test, and its stats page read as CSV to see
 * which instances are up and how many connections each holds. The config is the one docs/vps.md
 * shows ("Several instances"), with addresses filled in.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { eventually, freePort } from "./harness.ts";

/** The haproxy binary, or undefined when it is not installed (/usr/sbin is not always on PATH). */
export function haproxyBinary(): string | undefined {
  return Bun.which("haproxy") ?? Bun.which("haproxy", { PATH: "/usr/sbin:/usr/local/sbin" }) ?? undefined;
}

/** The config: one frontend on `port`, roundrobin over `servers`, a stats page on `statsPort`. */
export function haproxyConfig(opts: {
  port: number;
  statsPort: number;
  servers: Array<{ name: string; address: string }>;
}): string {
  return `global
  log stdout format raw local0
  maxconn 4096

defaults
  mode http
  log global
  option httplog
  # SSE streams are logged when they open, not when they end.
  option logasap
  # The VPS takes the client address from X-Forwarded-For when this proxy is in trusted_proxies.
  option forwardfor
  timeout connect 2s
  timeout http-request 10s
  # An event stream is quiet but for a heartbeat every 15 s: these must be longer.
  timeout client 1m
  timeout server 1m
  timeout tunnel 1h
  # A request whose instance died before answering goes to another one. A push is safe to send
  # again: the VPS answers a resent mutation "duplicate".
  retries 3
  retry-on conn-failure empty-response
  option redispatch 1

frontend dionysus
  bind 127.0.0.1:${opts.port}
  default_backend vps

backend vps
  balance roundrobin
  option httpchk GET /health
  http-check expect status 200
  default-server check inter 500ms fall 1 rise 1
${opts.servers.map((s) => `  server ${s.name} ${s.address}`).join("\n")}

frontend stats
  bind 127.0.0.1:${opts.statsPort}
  stats enable
  stats uri /stats
`;
}

export interface ServerStat {
  name: string;
  /** `UP`, `DOWN`, … as HAProxy reports it. */
  status: string;
  /** Connections to this server now (an event stream holds one). */
  current: number;
  /** Connections made to it so far. */
  total: number;
}

export interface Haproxy {
  url: string;
  config: string;
  /** The backend's servers as the stats page shows them. */
  servers(): Promise<ServerStat[]>;
  output(): string;
  stop(): Promise<void>;
}

/** Checks the config, starts haproxy in the foreground, and waits until every server is UP. */
export async function startHaproxy(
  binary: string,
  servers: Array<{ name: string; address: string }>,
): Promise<Haproxy> {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-haproxy-"));
  const port = freePort();
  const statsPort = freePort();
  const config = haproxyConfig({ port, statsPort, servers });
  const file = join(dir, "haproxy.cfg");
  writeFileSync(file, config);
  const check = Bun.spawnSync([binary, "-c", "-q", "-f", file], { stdout: "pipe", stderr: "pipe" });
  if (check.exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`haproxy refused the config: ${check.stderr.toString()}${check.stdout.toString()}`);
  }
  const proc: Subprocess<"ignore", "pipe", "pipe"> = Bun.spawn([binary, "-db", "-f", file], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let out = "";
  const collect = async (s: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of s) out += dec.decode(chunk, { stream: true });
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  const stats = async (): Promise<ServerStat[]> => {
    const res = await fetch(`http://127.0.0.1:${statsPort}/stats;csv`, { signal: AbortSignal.timeout(2000) });
    const [head, ...rows] = (await res.text()).trim().split("\n");
    const cols = head!.replace(/^# /, "").split(",");
    const at = (row: string[], col: string) => row[cols.indexOf(col)] ?? "";
    return rows
      .map((r) => r.split(","))
      .filter((r) => at(r, "pxname") === "vps" && !["FRONTEND", "BACKEND"].includes(at(r, "svname")))
      .map((r) => ({
        name: at(r, "svname"),
        status: at(r, "status"),
        current: Number(at(r, "scur")),
        total: Number(at(r, "stot")),
      }));
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
    await proc.exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const exited = await eventually(
      async () => {
        if (proc.exitCode !== null) return true;
        const s = await stats();
        return s.length === servers.length && s.every((x) => x.status === "UP") ? false : undefined;
      },
      20_000,
      "haproxy to see every instance up",
    );
    if (exited) throw new Error(`haproxy exited ${proc.exitCode}: ${out}`);
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\nhaproxy said: ${out}`);
  }
  return { url: `http://127.0.0.1:${port}`, config, servers: stats, output: () => out, stop };
}
