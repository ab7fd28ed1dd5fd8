/**
 * What every part of the SQLite edge store shares: the open database, its prepared statements,
 * the transaction and error helpers, the meta table, and the device's hybrid logical clock.
 * The parts (memories.ts, queue.ts, feed.ts, identity.ts, eviction.ts) each receive one
 * `SqliteContext`; sqlite-store.ts composes them into the `EdgeStore`.
 */
import type { Database, Statement } from "bun:sqlite";
import { DionysusError, describeIssues, isDionysusError } from "../../../core/errors.ts";
import { compareHlc, HlcClock, parseHlc } from "../../../core/hlc.ts";
import { DEFAULT_MAX_CONTENT_BYTES } from "../../../core/memory.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import { openEdgeDatabase } from "./open.ts";
import { MEMORY_COLUMNS, type MemoryRow } from "./rows.ts";

export interface SqliteStoreOptions {
  /** The database file; created (with its directory) when missing. */
  path: string;
  /** Largest memory content in UTF-8 bytes (default 1 MiB). */
  maxContentBytes?: number;
  /** Wall clock in ms (tests drive time with it). */
  now?: () => number;
  /** Run `PRAGMA quick_check` on an existing file when opening it (default true). */
  integrityCheck?: boolean;
  /** On a full disk, open for reading in exclusive locking mode (default true; see open.ts). */
  fullDiskFallback?: boolean;
}

/** Keys of the meta table. */
export const META = {
  deviceId: "device_id",
  hlc: "hlc",
  cursor: "cursor",
  clockOffset: "clock_offset_ms",
  lastMutation: "last_mutation_id",
  createdBy: "created_by_version",
  fileId: "db_file_id",
  splitPending: "identity_split_pending",
  syncLease: "sync_lease",
} as const;

export const iso = (ms: number) => new Date(ms).toISOString();

/** Maps SQLite failures to coded errors at the adapter boundary. */
function mapSqliteError(err: unknown): unknown {
  if (isDionysusError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return err;
  const message = (err as Error).message;
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
    return new DionysusError("busy", "the database is locked by another dionysus process; try again", {
      cause: err,
    });
  if (code.startsWith("SQLITE_CORRUPT") || code.startsWith("SQLITE_NOTADB"))
    return new DionysusError("db_corrupt", `the database is corrupt (${message})`, { cause: err });
  if (code.startsWith("SQLITE_FULL"))
    return new DionysusError("unavailable", "the disk is full; nothing was written (free some space)", {
      details: { reason: "disk_full" },
      cause: err,
    });
  if (
    code.startsWith("SQLITE_READONLY") ||
    code.startsWith("SQLITE_IOERR") ||
    code.startsWith("SQLITE_CANTOPEN")
  )
    return new DionysusError("unavailable", `the database cannot be written (${message})`, { cause: err });
  return err;
}

export function invalid(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>) {
  return new DionysusError("invalid_input", describeIssues(issues));
}

export class SqliteContext {
  readonly db: Database;
  readonly path: string;
  readonly maxContentBytes: number;
  /** The device's wall clock (ms). */
  readonly now: () => number;
  /** The device id that writes use; `syncClock()` refreshes it inside their transaction. */
  currentDeviceId: string;
  /** The estimated offset of the device clock from the VPS's (ms). */
  offsetMs: number;
  clock: HlcClock;
  /** The corrected clock that stamps use: the wall clock plus the offset. */
  readonly clockNow = () => this.now() + this.offsetMs;
  private readonly stmts = new Map<string, Statement>();

  /** Opens the database and reads (or makes) the device id and the clock; closes it on failure. */
  constructor(opts: SqliteStoreOptions) {
    this.path = opts.path;
    this.maxContentBytes = opts.maxContentBytes ?? DEFAULT_MAX_CONTENT_BYTES;
    this.now = opts.now ?? Date.now;
    this.db = openEdgeDatabase(opts.path, {
      integrityCheck: opts.integrityCheck ?? true,
      fullDiskFallback: opts.fullDiskFallback ?? true,
    });
    try {
      this.currentDeviceId = this.guard(() => this.ensureDeviceId());
      this.offsetMs = Number(this.getMeta(META.clockOffset) ?? 0) || 0;
      this.clock = new HlcClock(this.currentDeviceId, this.clockNow, this.getMeta(META.hlc));
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  // The helpers are arrow properties so that the parts may take them apart: `const { q } = ctx`.

  /** A prepared statement, cached by its SQL. */
  readonly q = (sql: string): Statement => {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  };

  /** Runs `fn`, turning SQLite failures into coded errors. */
  readonly guard = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw mapSqliteError(err);
    }
  };

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two
   * processes never deadlock upgrading a read lock). */
  readonly write = <T>(fn: () => T): T =>
    this.guard(() => {
      this.db.run("BEGIN IMMEDIATE");
      try {
        const result = fn();
        this.db.run("COMMIT");
        return result;
      } catch (err) {
        if (this.db.inTransaction) this.db.run("ROLLBACK");
        throw err;
      }
    });

  private ensureDeviceId(): string {
    const existing = this.getMeta(META.deviceId);
    if (existing) return existing;
    return this.write(() => {
      const again = this.readMeta(META.deviceId);
      if (again) return again;
      const id = uuidv7(this.now());
      this.putMeta(META.deviceId, id);
      this.putMeta(META.createdBy, "edge-schema-1");
      return id;
    });
  }

  // ---- meta -----------------------------------------------------------------------------

  /** Reads a meta value (inside or outside a transaction; errors unmapped). */
  readMeta(key: string): string | undefined {
    const row = this.q("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value;
  }

  /** Inside a write transaction: sets a meta value. */
  putMeta(key: string, value: string): void {
    this.q(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run(key, value);
  }

  /** Inside a write transaction: removes a meta value. */
  deleteMeta(key: string): void {
    this.q("DELETE FROM meta WHERE key = ?").run(key);
  }

  getMeta(key: string): string | undefined {
    return this.guard(() => this.readMeta(key));
  }

  // ---- clock ----------------------------------------------------------------------------

  /** Inside a write transaction: catch up with the device id and the stamps another process
   * (the CLI beside the daemon) persisted. */
  syncClock(): void {
    const id = this.readMeta(META.deviceId);
    if (id && id !== this.currentDeviceId) {
      this.currentDeviceId = id;
      this.clock = new HlcClock(id, this.clockNow, this.clock.current());
    }
    const stored = this.readMeta(META.hlc);
    if (stored && compareHlc(stored, this.clock.current()) > 0 && parseHlc(stored))
      this.clock = new HlcClock(this.currentDeviceId, this.clockNow, stored);
  }

  /** Inside a write transaction: the next HLC stamp, persisted so it never goes back. */
  stamp(): string {
    this.syncClock();
    const s = this.clock.tick();
    this.putMeta(META.hlc, s);
    return s;
  }

  // ---- memory rows ----------------------------------------------------------------------

  rowById(id: string): MemoryRow | undefined {
    return (
      (this.q(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE id = ?`).get(id) as MemoryRow | null) ?? undefined
    );
  }

  /** The row of a live memory; `not_found` for unknown or deleted ids. */
  liveRow(id: string): MemoryRow {
    const row = this.rowById(id);
    if (!row || row.deleted === 1) throw new DionysusError("not_found", `no memory with id ${id}`);
    return row;
  }
}
