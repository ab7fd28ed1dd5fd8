/**
 * PgBouncer (Debian's `pgbouncer` package) in transaction pooling in front of the test
 * PostgreSQL, for the test that runs the VPS through it: a generated config in a temporary
 * directory, a free port on 127.0.0.1, run in the foreground as a child of the test. PgBouncer
 * refuses to run as root, so as root it runs as the `postgres` system user (runuser), as the
 * private PostgreSQL of tests/helpers/private-postgres.ts does.
 */
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { eventually, freePort } from "./harness.ts";

/** The pgbouncer binary, or undefined when it is not installed (/usr/sbin is not always on PATH). */
export function pgbouncerBinary(): string | undefined {
  return Bun.which("pgbouncer") ?? Bun.which("pgbouncer", { PATH: "/usr/sbin:/usr/local/sbin" }) ?? undefined;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const u = Bun.spawnSync(["id", "-u", "postgres"], { stdout: "pipe" });
  const g = Bun.spawnSync(["id", "-g", "postgres"], { stdout: "pipe" });
  if (u.exitCode !== 0 || g.exitCode !== 0) return undefined;
  return { uid: Number(u.stdout.toString()), gid: Number(g.stdout.toString()) };
}

/** Why PgBouncer cannot run here, or undefined when it can. */
export function pgbouncerUnavailable(): string | undefined {
  if (!pgbouncerBinary())
    return "needs PgBouncer (Debian package pgbouncer; scripts/ensure-test-tools.sh installs it)";
  if (process.getuid?.() === 0 && (!postgresUser() || !Bun.which("runuser")))
    return "needs a `postgres` system user and runuser to run PgBouncer as (it refuses root)";
  return undefined;
}

export interface PgBouncer {
  /** `postgres://…` through PgBouncer to `database` (on the server `serverUrl` names). */
  url(database: string): string;
  stop(): Promise<void>;
}

/** Starts PgBouncer, pool_mode transaction, forwarding every database to `serverUrl`'s server. */
export async function startPgBouncer(serverUrl: string): Promise<PgBouncer> {
  const server = new URL(serverUrl);
  const dir = mkdtempSync(join(tmpdir(), "dionysus-pgbouncer-"));
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const port = freePort();
  const password = decodeURIComponent(server.password);
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(
    ini,
    `[databases]
* = host=${server.hostname} port=${server.port || 5432} user=${decodeURIComponent(server.username)}${password ? ` password=${password}` : ""}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 4
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options
logfile = ${join(dir, "pgbouncer.log")}
`,
  );
  if (owner) chownSync(ini, owner.uid, owner.gid);
  const argv = [pgbouncerBinary()!, ini];
  const proc: Subprocess = Bun.spawn(owner ? ["runuser", "-u", "postgres", "--", ...argv] : argv, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const url = (database: string) => `postgres://${server.username}@127.0.0.1:${port}/${database}`;
  await eventually(
    async () => {
      if (proc.exitCode !== null) throw new Error(`pgbouncer exited ${proc.exitCode}`);
      const c = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data() {} } }).catch(
        () => undefined,
      );
      c?.end();
      return c ? true : undefined;
    },
    30_000,
    "PgBouncer to listen",
  );
  return {
    url,
    async stop() {
      proc.kill("SIGTERM");
      await proc.exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
