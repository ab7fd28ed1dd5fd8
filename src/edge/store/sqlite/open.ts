/**
 * Opening the edge database: refuse files that are not ours, corrupt or from a newer Dionysus
 * (never overwriting or "repairing" them), then set the connection up and migrate. A full disk
 * is told apart from all of these: it is reported as such, and an existing database can still
 * be opened for reading.
 */
import { Database } from "bun:sqlite";
import { closeSync, mkdirSync, openSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { DionysusError } from "../../../core/errors.ts";
import { diskFullError, isDiskFull } from "../../disk.ts";
import { APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION } from "./schema.ts";

const SQLITE_MAGIC = "SQLite format 3\u0000";
/** How long a statement waits for another process's lock before failing with `busy`. */
export const BUSY_TIMEOUT_MS = 5000;

export interface OpenOptions {
  /** Run `PRAGMA quick_check` on an existing file before using it (default true). */
  integrityCheck?: boolean;
  /**
   * When the disk is too full for SQLite's shared-memory index (`-shm`), open an existing
   * database in exclusive locking mode instead, which keeps that index in memory: reads work,
   * writes fail with "the disk is full", and no other process can open the file meanwhile
   * (default true; fine for a one-shot command, not for the daemon).
   */
  fullDiskFallback?: boolean;
}

function readHeader(path: string): Buffer | undefined {
  let size: number;
  try {
    size = statSync(path).size;
  } catch {
    return undefined; // does not exist yet
  }
  if (size === 0) return undefined;
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(100);
    const n = readSync(fd, buf, 0, 100, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

const corrupt = (path: string, why: string, cause?: unknown) =>
  new DionysusError(
    "db_corrupt",
    `${path} ${why}; it was left untouched (move it away to start a fresh database)`,
    { details: { path }, cause },
  );

/** Reads a single-value pragma or query. */
function scalar(db: Database, sql: string): unknown {
  const row = db.query(sql).values()[0];
  return row?.[0];
}

/**
 * Opens (creating if needed) the database at `path`, validated and migrated to
 * {@link SCHEMA_VERSION}. Throws `db_corrupt` or `db_too_new` without writing to the file, and
 * `unavailable` (details `reason: "disk_full"`) when the disk is full.
 */
export function openEdgeDatabase(path: string, options: OpenOptions = {}): Database {
  const dir = dirname(path);
  try {
    return openChecked(path, options, false);
  } catch (err) {
    if (!isDiskFull(err, dir)) throw err;
    if (options.fullDiskFallback !== false && readHeader(path)) {
      try {
        return openChecked(path, options, true);
      } catch (again) {
        if (!isDiskFull(again, dir)) throw again;
      }
    }
    throw diskFullError(dir, `cannot open ${path}`, err);
  }
}

function openChecked(path: string, options: OpenOptions, exclusive: boolean): Database {
  const dir = dirname(path);
  const header = readHeader(path);
  if (header && (header.length < 100 || header.toString("latin1", 0, 16) !== SQLITE_MAGIC))
    throw corrupt(path, "is not a SQLite database");
  if (!header) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // SQLite gives the -wal and -shm files the main file's permissions: make it owner-only
    // before they exist. An empty file is what a fresh database starts from.
    try {
      closeSync(openSync(path, "wx", 0o600));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }

  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
  } catch (cause) {
    if (isDiskFull(cause, dir)) throw cause;
    throw new DionysusError("unavailable", `cannot open ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    // Before the first access: SQLite then keeps the WAL index in this process's memory and
    // never creates or grows the -shm file.
    if (exclusive) db.run("PRAGMA locking_mode = EXCLUSIVE");
    if (header) validateExisting(db, path, options.integrityCheck ?? true);
    // auto_vacuum only takes effect before the first table is created (eviction can then give
    // pages back to the OS). Only set it then: on an existing file the pragma still writes, and
    // opening for reading must not need to write (a full disk).
    if (Number(scalar(db, "SELECT count(*) FROM sqlite_schema")) === 0)
      db.run("PRAGMA auto_vacuum = INCREMENTAL");
    db.run("PRAGMA journal_mode = WAL");
    // FULL: a write acknowledged to the user survives a power loss, not only a crash.
    db.run("PRAGMA synchronous = FULL");
    db.run("PRAGMA foreign_keys = ON");
    migrate(db, path);
    return db;
  } catch (err) {
    db.close();
    if (err instanceof DionysusError || isDiskFull(err, dir)) throw err;
    throw corrupt(path, `cannot be read as a database (${(err as Error).message})`, err);
  }
}

function validateExisting(db: Database, path: string, integrityCheck: boolean): void {
  let appId: number;
  let version: number;
  let objects: number;
  try {
    appId = Number(scalar(db, "PRAGMA application_id"));
    version = Number(scalar(db, "PRAGMA user_version"));
    objects = Number(scalar(db, "SELECT count(*) FROM sqlite_schema"));
  } catch (cause) {
    if (isDiskFull(cause, dirname(path))) throw cause;
    throw corrupt(path, `is not a readable SQLite database (${(cause as Error).message})`, cause);
  }
  // An empty SQLite file (no schema at all) is what a first start interrupted before its first
  // migration leaves behind: it is safe to initialise.
  const empty = appId === 0 && version === 0 && objects === 0;
  if (!empty && appId !== APPLICATION_ID) throw corrupt(path, "is not a Dionysus edge database");
  if (version > SCHEMA_VERSION)
    throw new DionysusError(
      "db_too_new",
      `${path} was written by a newer Dionysus (schema ${version}, this version knows up to ${SCHEMA_VERSION}); upgrade dionysus. The file was left untouched`,
      { details: { path, schema: version, supported: SCHEMA_VERSION } },
    );
  if (integrityCheck && !empty) {
    let result: unknown;
    try {
      result = scalar(db, "PRAGMA quick_check(1)");
    } catch (cause) {
      if (isDiskFull(cause, dirname(path))) throw cause;
      throw corrupt(path, `is corrupt (${(cause as Error).message})`, cause);
    }
    if (result !== "ok") throw corrupt(path, `is corrupt (quick_check: ${String(result)})`);
  }
}

function migrate(db: Database, path: string): void {
  if (Number(scalar(db, "PRAGMA user_version")) >= SCHEMA_VERSION) return;
  // BEGIN IMMEDIATE serialises two processes migrating the same new file; the version is read
  // again under the lock so each step runs exactly once.
  db.transaction(() => {
    const current = Number(scalar(db, "PRAGMA user_version"));
    if (current > SCHEMA_VERSION)
      throw new DionysusError("db_too_new", `${path} was written by a newer Dionysus; upgrade dionysus`);
    for (let v = current; v < SCHEMA_VERSION; v++) {
      for (const sql of MIGRATIONS[v]!) db.run(sql);
    }
    db.run(`PRAGMA application_id = ${APPLICATION_ID}`);
    db.run(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}
