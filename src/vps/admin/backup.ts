/**
 * `dionysus vps backup` and `dionysus vps restore`: the whole VPS database in one file, and back.
 *
 * A backup file is a header line, `DIONYSUS-VPS-BACKUP {json}`, naming the format, the binary's
 * version, the database kind, the migrations the database had and its epoch, followed by the dump
 * itself: `pg_dump --format=custom` on PostgreSQL, PGlite's data-dir tarball (`dumpDataDir`) on the
 * embedded database. A restore reads the header first and refuses a file without it, of another
 * kind, or from a newer version (an unknown format or migration); the database is only touched
 * after that.
 *
 * A restore always gives the server a new epoch. Every device's pull cursor is then from another
 * epoch, so its next pull is answered `refetch`: it rebuilds its cache from the restored feed and
 * sends its own writes again (see docs/sync.md), so writes made after the backup are not lost.
 */
import { closeSync, openSync, readSync, renameSync, rmSync } from "node:fs";
import { DionysusError } from "../../core/errors.ts";
import { VERSION } from "../../core/version.ts";
import { createPrivateFile } from "../../platform/private-file.ts";
import type { VpsDatabase } from "../db/database.ts";
import { vpsMigrations } from "../db/migrations.ts";

export const BACKUP_MAGIC = "DIONYSUS-VPS-BACKUP";
/** The backup format this binary writes and the newest it reads. */
export const BACKUP_FORMAT = 1;
/** The header line is at most this long. */
const MAX_HEADER_BYTES = 64 * 1024;

export interface BackupHeader {
  format: number;
  version: string;
  kind: "postgres" | "pglite";
  /** Migrations applied to the database when it was backed up. */
  migrations: string[];
  epoch: string;
  created_at: string;
}

/** A new epoch id, like the first migration makes. */
export const newEpoch = (): string => crypto.randomUUID().replaceAll("-", "").slice(0, 16);

async function describe(database: VpsDatabase): Promise<BackupHeader> {
  const db = database.db;
  const meta = await db.selectFrom("server_meta").select("epoch").executeTakeFirstOrThrow();
  // The migrations table is not part of the typed schema.
  const rows = await (db as unknown as import("kysely").Kysely<{ dionysus_migrations: { name: string } }>)
    .selectFrom("dionysus_migrations")
    .select("name")
    .orderBy("name")
    .execute();
  return {
    format: BACKUP_FORMAT,
    version: VERSION,
    kind: database.kind,
    migrations: rows.map((r) => r.name),
    epoch: meta.epoch,
    created_at: new Date().toISOString(),
  };
}

/** Runs a PostgreSQL client tool; a missing one is a clear `unavailable`. */
async function runTool(tool: string, args: string[]): Promise<void> {
  const path = Bun.which(tool);
  if (!path)
    throw new DionysusError(
      "unavailable",
      `${tool} is not installed; install the PostgreSQL client tools (e.g. apt install postgresql-client), version at least the server's`,
    );
  const p = Bun.spawn([path, ...args], { stdout: "ignore", stderr: "pipe" });
  const [code, err] = await Promise.all([p.exited, new Response(p.stderr).text()]);
  if (code !== 0)
    throw new DionysusError(
      "unavailable",
      `${tool} failed (exit ${code}): ${err.trim().split("\n").slice(-3).join(" ")}`,
    );
}

/** Writes `head` then `body` to `path`, chunk by chunk (a dump may be larger than memory). */
async function writeStreamed(path: string, head: string, body: Blob): Promise<void> {
  const w = Bun.file(path).writer();
  if (head) w.write(head);
  for await (const chunk of body.stream()) {
    w.write(chunk);
    await w.flush();
  }
  await w.end();
}

/** Writes a backup of `database` to `out` (atomically: beside it, then renamed). Returns its header. */
export async function backupVps(
  database: VpsDatabase,
  databaseUrl: string | undefined,
  out: string,
): Promise<BackupHeader> {
  const tmp = `${out}.partial-${process.pid}`;
  const dump = `${out}.dump-${process.pid}`;
  rmSync(tmp, { force: true });
  rmSync(dump, { force: true });
  try {
    // Both files hold every user's data and password hashes: owner-only before the first byte.
    // Made first, so a path that cannot be written is said before the database is read.
    try {
      createPrivateFile(tmp);
      if (database.kind === "postgres") createPrivateFile(dump);
    } catch (cause) {
      throw new DionysusError("unavailable", `backup failed: ${(cause as Error).message}`, { cause });
    }
    const header = await describe(database);
    let payload: Blob;
    if (database.kind === "postgres") {
      if (!databaseUrl) throw new DionysusError("internal", "a PostgreSQL backup needs the database URL");
      await runTool("pg_dump", [
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        `--file=${dump}`,
        databaseUrl,
      ]);
      payload = Bun.file(dump);
    } else {
      if (!database.dumpDataDir)
        throw new DionysusError("internal", "this database cannot dump its data dir");
      payload = await database.dumpDataDir();
    }
    await writeStreamed(tmp, `${BACKUP_MAGIC} ${JSON.stringify(header)}\n`, payload);
    renameSync(tmp, out);
    return header;
  } finally {
    rmSync(tmp, { force: true });
    rmSync(dump, { force: true });
  }
}

/** Reads and checks a backup's header: refuses a file that is not a Dionysus backup, or one from
 * a newer version. Returns the header and where the dump starts. */
export function readBackupHeader(path: string): { header: BackupHeader; offset: number } {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    throw new DionysusError("not_found", `${path} does not exist or cannot be read`);
  }
  const buf = new Uint8Array(MAX_HEADER_BYTES);
  let n: number;
  try {
    n = readSync(fd, buf, 0, buf.length, 0);
  } finally {
    closeSync(fd);
  }
  const nl = buf.subarray(0, n).indexOf(10);
  const line = nl < 0 ? "" : new TextDecoder().decode(buf.subarray(0, nl));
  const notOurs = new DionysusError("invalid_input", `${path} is not a Dionysus VPS backup`);
  if (!line.startsWith(`${BACKUP_MAGIC} `)) throw notOurs;
  let header: BackupHeader;
  try {
    header = JSON.parse(line.slice(BACKUP_MAGIC.length + 1)) as BackupHeader;
  } catch {
    throw notOurs;
  }
  if (typeof header.format !== "number" || !Array.isArray(header.migrations)) throw notOurs;
  const unknown = header.migrations.filter((m) => !(m in vpsMigrations));
  if (header.format > BACKUP_FORMAT || unknown.length > 0)
    throw new DionysusError(
      "db_too_new",
      `${path} is from a newer version of dionysus (${header.version}${
        unknown.length ? `, migration ${unknown.join(", ")}` : `, backup format ${header.format}`
      }); upgrade dionysus to restore it`,
    );
  return { header, offset: nl + 1 };
}

/** Restores a PostgreSQL backup into `databaseUrl` (the server must be stopped). */
export async function restorePostgres(path: string, offset: number, databaseUrl: string): Promise<void> {
  const dump = `${path}.restore-${process.pid}`;
  try {
    await writeStreamed(dump, "", Bun.file(path).slice(offset));
    await runTool("pg_restore", [
      "--clean",
      "--if-exists",
      "--no-owner",
      "--no-privileges",
      "--single-transaction",
      `--dbname=${databaseUrl}`,
      dump,
    ]);
  } finally {
    rmSync(dump, { force: true });
  }
}

/** The dump of a backup file, for PGlite's `loadDataDir`. */
export const backupPayload = (path: string, offset: number): Blob => Bun.file(path).slice(offset);

/** Gives the restored database a new epoch, so that every device refetches. */
export async function startNewEpoch(database: VpsDatabase): Promise<string> {
  const epoch = newEpoch();
  await database.db.updateTable("server_meta").set({ epoch }).execute();
  return epoch;
}
