/**
 * A PostgreSQL server of the test's own, for faults that stop or crash the server: the shared test
 * server must never be restarted, since other test files use it at the same moment. `initdb` into
 * a temporary directory, `pg_ctl` on a free port of 127.0.0.1 with its socket in that directory.
 * PostgreSQL refuses to run as root, so as root it runs as the `postgres` system user (runuser).
 */
import { chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./harness.ts";

export interface PrivatePostgres {
  /** postgres://…/dionysus on this server. */
  url: string;
  /** Fast stop (`immediate`: a crash, recovered from the WAL on start) or clean stop. */
  stop(mode?: "immediate" | "fast"): void;
  start(): void;
  destroy(): void;
}

function binDir(): string | undefined {
  try {
    const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a));
    return versions.length ? `/usr/lib/postgresql/${versions[0]}/bin` : undefined;
  } catch {
    return undefined;
  }
}

function pgUid(): { uid: number; gid: number } | undefined {
  const r = Bun.spawnSync(["id", "-u", "postgres"], { stdout: "pipe" });
  const g = Bun.spawnSync(["id", "-g", "postgres"], { stdout: "pipe" });
  if (r.exitCode !== 0 || g.exitCode !== 0) return undefined;
  return { uid: Number(r.stdout.toString()), gid: Number(g.stdout.toString()) };
}

/** Why a private server cannot be started here, or undefined when it can. */
export function privatePostgresUnavailable(): string | undefined {
  if (!binDir()) return "needs PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb)";
  if (process.getuid?.() === 0 && !pgUid())
    return "needs a `postgres` system user to run PostgreSQL as (root may not)";
  if (process.getuid?.() === 0 && !Bun.which("runuser"))
    return "needs runuser (util-linux) to run PostgreSQL as `postgres`";
  return undefined;
}

/** Starts a private server; its files go in a new directory under `parent` (the temp dir by default). */
export function startPrivatePostgres(parent: string = tmpdir()): PrivatePostgres {
  const bin = binDir()!;
  const root = mkdtempSync(join(parent, "dionysus-pg-"));
  const data = join(root, "data");
  const owner = process.getuid?.() === 0 ? pgUid() : undefined;
  if (owner) chownSync(root, owner.uid, owner.gid);
  const as = (argv: string[]) => (owner ? ["runuser", "-u", "postgres", "--", ...argv] : argv);
  const run = (argv: string[]) => {
    const r = Bun.spawnSync(as(argv), { stdout: "pipe", stderr: "pipe", timeout: 60_000 });
    if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}${r.stdout.toString()}`);
  };
  const port = freePort();
  run([`${bin}/initdb`, "-D", data, "-U", "dionysus", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  const opts = `-p ${port} -k ${root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50`;
  const start = () =>
    run([`${bin}/pg_ctl`, "-D", data, "-o", opts, "-l", join(root, "log"), "-w", "-t", "60", "start"]);
  start();
  run([`${bin}/createdb`, "-h", "127.0.0.1", "-p", String(port), "-U", "dionysus", "dionysus"]);
  return {
    url: `postgres://dionysus@127.0.0.1:${port}/dionysus`,
    stop(mode = "fast") {
      run([`${bin}/pg_ctl`, "-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
    },
    start,
    destroy() {
      Bun.spawnSync(as([`${bin}/pg_ctl`, "-D", data, "-m", "immediate", "-w", "stop"]), { stderr: "ignore" });
      rmSync(root, { recursive: true, force: true });
    },
  };
}
