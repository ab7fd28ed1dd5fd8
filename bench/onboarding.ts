#!/usr/bin/env bun
/**
 * Onboarding end to end: from a freshly built binary to an authenticated agent whose first write
 * is on the VPS. Goal: under 60 s. Each run starts from nothing (a new HOME) and times, in order:
 *
 *   1. install    scripts/install.sh PREFIX (checksum check, atomic copy)
 *   2. service    `dionysus service install` (the systemd user unit); systemctl is a stand-in
 *                 that starts the unit's ExecStart the way systemd would (no systemd runs here)
 *   3. running    until the daemon it started answers /health
 *   4. login      `dionysus login URL --api-key KEY` (the non-interactive login; the browser
 *                 flow adds the time a person takes to type a code)
 *   5. syncing    one memory written through the daemon until the VPS holds it (queue synced)
 *
 * The VPS (same binary, `vps serve` on embedded PGlite, or PostgreSQL with --database-url) and its
 * user and key are set up before the clock starts: they are the self-hoster's, not the device's.
 *
 *   bun run bench:onboarding [-- --runs 5] [--database-url URL] [--no-write]
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    runs: { type: "string", default: "5" },
    "database-url": { type: "string" },
    "no-write": { type: "boolean", default: false },
  },
});
const RUNS = Number(args.runs);
const log = (s: string) => process.stderr.write(`${s}\n`);
const work = join(tmpdir(), `dionysus-onboarding-${process.pid}`);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

function freePort(): number {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const p = s.port!;
  s.stop(true);
  return p;
}
function run(argv: string[], env: Record<string, string>): string {
  const r = Bun.spawnSync(argv, { env, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString();
}
async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(20);
  }
}

// ---- the build (before the clock) ---------------------------------------------------------------
const dist = join(work, "dist");
mkdirSync(dist);
const binary = join(dist, "dionysus");
log("building the binary ...");
run([process.execPath, "build", "--compile", "--minify", "src/cli/main.ts", "--outfile", binary], {
  ...(process.env as Record<string, string>),
});
run([process.execPath, join(ROOT, "scripts/checksum.ts"), binary], process.env as Record<string, string>);

// ---- the VPS (before the clock) -----------------------------------------------------------------
const vpsDir = join(work, "vps");
const vpsPort = freePort();
const vpsUrl = `http://127.0.0.1:${vpsPort}`;
const baseEnv = { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1" };
const dbArgs = args["database-url"] ? ["--database-url", args["database-url"]] : [];
const vps = Bun.spawn(
  [binary, "vps", "serve", "--host", "127.0.0.1", "--port", String(vpsPort), "--data-dir", vpsDir, ...dbArgs],
  {
    env: { ...baseEnv, HOME: work },
    stdout: "ignore",
    stderr: "ignore",
  },
);
await until("the VPS", async () => ((await fetch(`${vpsUrl}/health`)).ok ? true : undefined));
run(
  [binary, "vps", "user", "add", "ana", "--password", "onboarding-bench-pw", "--data-dir", vpsDir, ...dbArgs],
  {
    ...baseEnv,
    HOME: work,
  },
);

// ---- the runs ------------------------------------------------------------------------------------
const STEPS = ["install", "service", "running", "login", "syncing"] as const;
type Step = (typeof STEPS)[number];
const times: Record<Step | "total", number[]> = {
  install: [],
  service: [],
  running: [],
  login: [],
  syncing: [],
  total: [],
};

for (let i = 0; i < RUNS; i++) {
  const home = join(work, `home-${i}`);
  const fakeBin = join(home, "fake-bin");
  mkdirSync(fakeBin, { recursive: true });
  const port = freePort();
  // The daemon's port (8080 may be taken here), as a user would set it: the unit's EnvironmentFile.
  mkdirSync(join(home, ".config", "dionysus"), { recursive: true });
  writeFileSync(join(home, ".config", "dionysus", "dionysus.env"), `DIONYSUS_PORT=${port}\n`);
  // The stand-in systemctl: `enable --now` starts the unit's ExecStart with its EnvironmentFile.
  writeFileSync(
    join(fakeBin, "systemctl"),
    `#!/bin/sh
case "$*" in
  *"enable --now"*)
    unit="$HOME/.config/systemd/user/dionysus.service"
    cmd=$(sed -n 's/^ExecStart=//p' "$unit")
    set -a; . "$HOME/.config/dionysus/dionysus.env"; set +a
    nohup $cmd >"$HOME/daemon.log" 2>&1 &
    echo $! >"$HOME/daemon.pid" ;;
  *is-active*) echo active ;;
esac
exit 0
`,
  );
  chmodSync(join(fakeBin, "systemctl"), 0o755);
  const prefix = join(home, ".local");
  const env = { ...baseEnv, HOME: home, PATH: `${join(prefix, "bin")}:${fakeBin}:${baseEnv.PATH}` };
  const key = JSON.parse(
    run([binary, "vps", "key", "create", "ana", "--json", "--data-dir", vpsDir, ...dbArgs], {
      ...baseEnv,
      HOME: work,
    }),
  ) as { key: string };

  const mark: Partial<Record<Step, number>> = {};
  const t0 = performance.now();
  run(["sh", join(ROOT, "scripts/install.sh")], { ...env, DIONYSUS_BINARY: binary });
  mark.install = performance.now();
  run(["dionysus", "service", "install"], env);
  mark.service = performance.now();
  const daemon = `http://127.0.0.1:${port}`;
  await until("the daemon", async () => ((await fetch(`${daemon}/health`)).ok ? true : undefined));
  mark.running = performance.now();
  run(["dionysus", "login", vpsUrl, "--api-key", key.key, "--name", `bench-${i}`], env);
  mark.login = performance.now();
  const token = readFileSync(join(home, ".local/share/dionysus/api-token"), "utf8").trim();
  const auth = { Authorization: `Bearer ${token}`, "Content-Type": "application/json" };
  const w = await fetch(`${daemon}/v1/memories`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify({ content: `onboarded device ${i}` }),
  });
  if (w.status !== 201) throw new Error(`write answered ${w.status}`);
  await until("the first sync", async () => {
    const s = (await (await fetch(`${daemon}/v1/sync/status`, { headers: auth })).json()) as {
      queue: { synced: number; queued: number; syncing: number };
      auth?: string;
    };
    return s.auth === "ok" && s.queue.synced >= 1 && s.queue.queued + s.queue.syncing === 0
      ? true
      : undefined;
  });
  mark.syncing = performance.now();

  let prev = t0;
  for (const s of STEPS) {
    times[s].push(mark[s]! - prev);
    prev = mark[s]!;
  }
  times.total.push(prev - t0);
  log(`run ${i + 1}: ${((prev - t0) / 1000).toFixed(2)} s`);
  const pid = Number(readFileSync(join(home, "daemon.pid"), "utf8"));
  process.kill(pid, "SIGTERM");
  await until("the daemon to stop", async () => {
    try {
      process.kill(pid, 0);
      return undefined;
    } catch {
      return true;
    }
  });
}
vps.kill("SIGTERM");
await vps.exited;
rmSync(work, { recursive: true, force: true });

const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const fmt = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`);
const rows = [...STEPS, "total" as const].map(
  (s) => `| ${s} | ${fmt(med(times[s]))} | ${fmt(Math.max(...times[s]))} |`,
);
const when = new Date().toISOString().slice(0, 16).replace("T", " ");
const total = med(times.total);
const table = `### ${when} UTC — ${RUNS} runs, Bun ${Bun.version}, ${availableParallelism()}-core shared VM, loaded by parallel work (load average ${loadavg()[0]!.toFixed(1)}), VPS on ${args["database-url"] ? "PostgreSQL" : "embedded PGlite"}

| step | median | worst |
| --- | --- | --- |
${rows.join("\n")}

- Compiled binary, fresh HOME each run; systemctl is a stand-in that starts the unit's ExecStart (no systemd here); login with an API key.
- Goal (fresh binary to an authenticated, syncing agent under 60 s): ${total < 60_000 ? "met" : "missed"}, median ${fmt(total)}, worst ${fmt(Math.max(...times.total))}.
`;
process.stdout.write(`${table}\n`);
if (!args["no-write"]) {
  const file = join(ROOT, "bench/RESULTS.md");
  let text = readFileSync(file, "utf8");
  if (!text.includes("\n## Onboarding\n"))
    text += `\n## Onboarding\n\nFrom a freshly built binary to an authenticated agent whose first write is on the VPS: install, service, daemon up, login, first sync. Goal: under 60 s. Run with \`bun run bench:onboarding\`.\n`;
  writeFileSync(file, `${text.trimEnd()}\n\n${table}`);
}
