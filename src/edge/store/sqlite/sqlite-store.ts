/**
 * The edge store on bun:sqlite: memories with an FTS5 index, the sync queue, the conflict log
 * and small settings, in one WAL-mode file that the daemon and the CLI may open at once.
 */
import type { Database, Statement } from "bun:sqlite";
import { statSync } from "node:fs";
import { resolve } from "../../../core/conflict.ts";
import { DionysusError, describeIssues, isDionysusError } from "../../../core/errors.ts";
import { compareHlc, HlcClock, isHlc, parseHlc } from "../../../core/hlc.ts";
import {
  DEFAULT_MAX_CONTENT_BYTES,
  type LocalMemory,
  type Memory,
  MemoryPatch,
  NewMemory,
  validateMemoryFields,
} from "../../../core/memory.ts";
import type { RecallHit } from "../../../core/protocol/edge-api.ts";
import type {
  Change,
  ConflictEntry,
  MemoryData,
  Mutation,
  PushResult,
  QueueCounts,
} from "../../../core/protocol/sync.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import type { ApplyChangesResult, EdgeStore, QueueItem, QueueStatus } from "../types.ts";
import { openEdgeDatabase } from "./open.ts";
import { type PlanSource, planRecall } from "./recall-plan.ts";
import {
  MEMORY_COLUMNS,
  type MemoryRow,
  type QueueRow,
  sameState,
  toLocalMemory,
  toMemory,
  toMemoryData,
  toQueueItem,
} from "./rows.ts";

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

/** Opens (or creates) the edge database at `opts.path`. Throws `db_corrupt` / `db_too_new`
 * for a file it must not touch. */
export function createSqliteStore(opts: SqliteStoreOptions): EdgeStore {
  return new SqliteEdgeStore(opts);
}

/** A `get()` records the access at most this often per memory, so reads rarely write. */
const TOUCH_INTERVAL_MS = 60_000;
/** A batch left `syncing` this long is taken to be abandoned by a process that died. */
const SYNC_LEASE_MS = 5 * 60_000;
const SNIPPET_TOKENS = 24;

const META = {
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

const iso = (ms: number) => new Date(ms).toISOString();

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

function invalid(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>) {
  return new DionysusError("invalid_input", describeIssues(issues));
}

class SqliteEdgeStore implements EdgeStore {
  private currentDeviceId: string;
  private readonly db: Database;
  private readonly path: string;
  private readonly maxContentBytes: number;
  private readonly now: () => number;
  private offsetMs: number;
  private clock: HlcClock;
  private readonly clockNow = () => this.now() + this.offsetMs;
  private readonly stmts = new Map<string, Statement>();

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
      this.clock = new HlcClock(this.deviceId, this.clockNow, this.getMeta(META.hlc));
      this.noticeCopy();
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  // ---- plumbing -------------------------------------------------------------------------

  private q(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw mapSqliteError(err);
    }
  }

  /** Runs `fn` in a `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so two
   * processes never deadlock upgrading a read lock). */
  private write<T>(fn: () => T): T {
    return this.guard(() => {
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
  }

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

  private readMeta(key: string): string | undefined {
    const row = this.q("SELECT value FROM meta WHERE key = ?").get(key) as { value: string } | null;
    return row?.value;
  }

  private putMeta(key: string, value: string): void {
    this.q(
      "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    ).run(key, value);
  }

  /**
   * A copied or restored data dir must not go on as the same device: the VPS would take its new
   * writes, numbered again from an old counter, for resends of writes it already has. The file's
   * inode is recorded in the database; a database that finds itself in another file (a `cp`, a
   * restore from backup, a copy to a new machine) marks itself for a new device identity, which
   * the sync engine takes before its next push. (A VM rolled back in place keeps its inode; the
   * VPS notices that case by the mutation digests: see `device_diverged`.)
   */
  private noticeCopy(): void {
    let fileId: string;
    try {
      fileId = String(statSync(this.path).ino);
    } catch {
      return;
    }
    if (fileId === "0") return; // a file system without inode numbers
    const recorded = this.getMeta(META.fileId);
    if (recorded === fileId) return;
    try {
      this.write(() => {
        this.putMeta(META.fileId, fileId);
        if (recorded === undefined) return;
        this.putMeta(
          META.splitPending,
          "the database file was copied or restored (it is not the file this device was using)",
        );
        // The copied sync lease names the original's process, which may well be running.
        this.q("DELETE FROM meta WHERE key = ?").run(META.syncLease);
      });
    } catch {
      // Best effort (a full disk, a read-only file): the VPS still refuses a diverged history.
    }
  }

  splitPending(): string | undefined {
    return this.getMeta(META.splitPending) || undefined;
  }

  markSplitPending(reason: string): void {
    this.write(() => this.putMeta(META.splitPending, reason));
  }

  /** Read from the database each time: another process (`dionysus login --new-device` beside
   * the daemon) may have changed it. Writes use `currentDeviceId`, which `syncClock()` refreshes
   * inside their transaction. */
  get deviceId(): string {
    const stored = this.guard(() => this.readMeta(META.deviceId));
    return stored ?? this.currentDeviceId;
  }

  resetDeviceId(newId?: string): string {
    return this.write(() => {
      const id = newId ?? uuidv7(this.now());
      this.putMeta(META.deviceId, id);
      this.syncClock();
      // Unsent writes carry stamps of the old node; the VPS takes a device's writes only under
      // its own node, so they are stamped again (in order, after everything seen so far).
      const pending = this.q(
        "SELECT mutation_id FROM sync_queue WHERE status IN ('queued', 'syncing') ORDER BY mutation_id",
      ).all() as { mutation_id: number }[];
      this.restampRows(
        pending.map((r) => r.mutation_id),
        () => this.clock.tick(),
      );
      this.putMeta(META.hlc, this.clock.current());
      this.q("DELETE FROM meta WHERE key = ?").run(META.splitPending);
      return id;
    });
  }

  /** Inside a write transaction: catch up with the device id and the stamps another process
   * (the CLI beside the daemon) persisted. */
  private syncClock(): void {
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
  private stamp(): string {
    this.syncClock();
    const s = this.clock.tick();
    this.putMeta(META.hlc, s);
    return s;
  }

  /** Inside a write transaction: append to the queue with the next gapless mutation id. */
  private enqueue(
    memoryId: string,
    op: Mutation["op"],
    hlc: string,
    baseHlc: string | null,
    payload: MemoryData | null,
  ): number {
    const row = this.q(
      `SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${META.lastMutation}'), 0),
                  coalesce((SELECT max(mutation_id) FROM sync_queue), 0)) + 1 AS next`,
    ).get() as { next: number };
    const at = iso(this.now());
    this.q(
      `INSERT INTO sync_queue (mutation_id, memory_id, op, hlc, base_hlc, payload, status, created_at, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
    ).run(row.next, memoryId, op, hlc, baseHlc, payload === null ? null : JSON.stringify(payload), at, at);
    this.putMeta(META.lastMutation, String(row.next));
    return row.next;
  }

  private rowById(id: string): MemoryRow | undefined {
    return (
      (this.q(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE id = ?`).get(id) as MemoryRow | null) ?? undefined
    );
  }

  private liveRow(id: string): MemoryRow {
    const row = this.rowById(id);
    if (!row || row.deleted === 1) throw new DionysusError("not_found", `no memory with id ${id}`);
    return row;
  }

  private logConflict(memoryId: string, winnerHlc: string, loser: Memory): void {
    this.q(
      `INSERT OR IGNORE INTO conflicts (memory_id, winner_hlc, loser_hlc, loser, resolved_at)
       VALUES (?, ?, ?, ?, ?)`,
    ).run(memoryId, winnerHlc, loser.hlc, JSON.stringify(loser), iso(this.now()));
  }

  // ---- local reads and writes -----------------------------------------------------------

  create(input: NewMemory): LocalMemory {
    const parsed = NewMemory.safeParse(input);
    if (!parsed.success) throw invalid(parsed.error.issues);
    const data = parsed.data;
    validateMemoryFields(data, this.maxContentBytes);
    return this.write(() => {
      const hlc = this.stamp();
      const now = this.clockNow();
      const at = iso(now);
      const memory: LocalMemory = {
        id: uuidv7(now),
        content: data.content,
        kind: data.kind,
        tags: data.tags,
        metadata: data.metadata,
        embedding: null,
        created_at: at,
        updated_at: at,
        hlc,
        deleted: false,
        origin_device: this.currentDeviceId,
        source: "local",
        synced_at: null,
        last_accessed_at: null,
      };
      this.q(
        `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                               deleted, origin_device, source, synced_at, last_accessed_at)
         VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, ?, 'local', NULL, NULL)`,
      ).run(
        memory.id,
        memory.content,
        memory.kind,
        JSON.stringify(memory.tags),
        JSON.stringify(memory.metadata),
        at,
        at,
        hlc,
        this.currentDeviceId,
      );
      this.enqueue(memory.id, "create", hlc, null, toMemoryData(memory));
      return memory;
    });
  }

  get(id: string): LocalMemory | undefined {
    return this.guard(() => {
      const row = this.rowById(id);
      if (!row || row.deleted === 1) return undefined;
      const now = this.now();
      const last = row.last_accessed_at ? Date.parse(row.last_accessed_at) : 0;
      if (now - last >= TOUCH_INTERVAL_MS) {
        try {
          this.q("UPDATE memories SET last_accessed_at = ? WHERE rid = ?").run(iso(now), row.rid);
          row.last_accessed_at = iso(now);
        } catch {
          // Recording the access is best effort: a read never fails because another process
          // holds the write lock.
        }
      }
      return toLocalMemory(row);
    });
  }

  update(id: string, patch: MemoryPatch): LocalMemory {
    const parsed = MemoryPatch.safeParse(patch);
    if (!parsed.success) throw invalid(parsed.error.issues);
    const p = parsed.data;
    validateMemoryFields(p, this.maxContentBytes);
    return this.write(() => {
      const current = toLocalMemory(this.liveRow(id));
      const hlc = this.stamp();
      const at = iso(this.clockNow());
      const next: LocalMemory = {
        ...current,
        content: p.content ?? current.content,
        kind: p.kind ?? current.kind,
        tags: p.tags ?? current.tags,
        metadata: p.metadata ?? current.metadata,
        updated_at: at,
        hlc,
        source: "local",
        synced_at: null,
      };
      this.q(
        `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, updated_at = ?, hlc = ?,
                             base_hlc = ?, source = 'local', synced_at = NULL,
                             embedding = CASE WHEN content = ? THEN embedding END
         WHERE id = ?`,
      ).run(
        next.content,
        next.kind,
        JSON.stringify(next.tags),
        JSON.stringify(next.metadata),
        at,
        hlc,
        current.hlc,
        next.content,
        id,
      );
      // A vector describes the content it was made from.
      if (next.content !== current.content) next.embedding = null;
      this.enqueue(id, "update", hlc, current.hlc, toMemoryData(next));
      return next;
    });
  }

  delete(id: string): void {
    this.write(() => {
      const base = this.liveRow(id).hlc;
      const hlc = this.stamp();
      const at = iso(this.clockNow());
      this.q(
        `UPDATE memories SET content = '', tags = '[]', metadata = '{}', embedding = NULL, deleted = 1,
                             updated_at = ?, hlc = ?, base_hlc = ?, source = 'local', synced_at = NULL
         WHERE id = ?`,
      ).run(at, hlc, base, id);
      // Unsynced writes keep their payload: the VPS still has to receive them in order (synced
      // rows hold none).
      this.enqueue(id, "delete", hlc, base, null);
    });
  }

  recent(limit: number): LocalMemory[] {
    return this.guard(() =>
      (
        this.q(
          `SELECT ${MEMORY_COLUMNS} FROM memories WHERE deleted = 0 ORDER BY updated_at DESC, rid DESC LIMIT ?`,
        ).all(limit) as MemoryRow[]
      ).map(toLocalMemory),
    );
  }

  private readonly planSource: PlanSource = {
    countCapped: (token, cap) =>
      (
        this.q(
          "SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)",
        ).get(`"${token}"`, cap) as { n: number }
      ).n,
    countInWindow: (match, minRowid, cap) =>
      (
        this.q(
          "SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? LIMIT ?)",
        ).get(match, minRowid, cap) as { n: number }
      ).n,
    maxRowid: () => (this.q("SELECT coalesce(max(rid), 0) AS n FROM memories").get() as { n: number }).n,
  };

  recall(query: string, limit: number): RecallHit[] {
    return this.guard(() => {
      const plan = planRecall(query, this.planSource);
      if (!plan) return [];
      // FTS5 ranks (ORDER BY rank is answered by the index) and makes snippets for the rows it
      // returns only; the memories are then read by rowid.
      const ranked = this.q(
        `SELECT rowid AS r, -rank AS score, snippet(memories_fts, 0, '**', '**', '…', ${SNIPPET_TOKENS}) AS s
         FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? ORDER BY rank LIMIT ?`,
      ).all(plan.match, plan.minRowid ?? 0, limit) as { r: number; score: number; s: string | null }[];
      const byRid = this.q(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE rid = ? AND deleted = 0`);
      const hits: RecallHit[] = [];
      for (const h of ranked) {
        const row = byRid.get(h.r) as MemoryRow | null;
        if (!row) continue;
        hits.push({ memory: toLocalMemory(row), score: h.score, snippet: h.s || row.content.slice(0, 200) });
      }
      return hits;
    });
  }

  countMemories(): number {
    return this.guard(
      () => (this.q("SELECT count(*) AS n FROM memories WHERE deleted = 0").get() as { n: number }).n,
    );
  }

  // ---- sync queue -----------------------------------------------------------------------

  queueCounts(): QueueCounts {
    return this.guard(() => {
      const counts: QueueCounts = { queued: 0, syncing: 0, synced: 0, failed: 0 };
      const rows = this.q("SELECT status, n FROM sync_queue_counts").all() as {
        status: QueueStatus;
        n: number;
      }[];
      for (const r of rows) counts[r.status] = r.n;
      return counts;
    });
  }

  queueItems(status: QueueStatus, limit: number): QueueItem[] {
    return this.guard(() =>
      (
        this.q("SELECT * FROM sync_queue WHERE status = ? ORDER BY mutation_id LIMIT ?").all(
          status,
          limit,
        ) as QueueRow[]
      ).map(toQueueItem),
    );
  }

  requeueSyncing(): number {
    return this.write(
      () =>
        this.q("UPDATE sync_queue SET status = 'queued', updated_at = ? WHERE status = 'syncing'").run(
          iso(this.now()),
        ).changes,
    );
  }

  /**
   * Claims the due prefix of the queue. Mutations reach the VPS strictly in mutation_id order
   * (it answers any id at or below the last one it applied as `duplicate`), so a batch never
   * skips over a queued item that is still backing off, and nothing new is claimed while
   * another batch is in flight (in this or another process); a batch left `syncing` longer
   * than the lease is taken back.
   */
  claimBatch(limit: number, now: number = this.now()): Mutation[] {
    return this.write(() => {
      this.q("UPDATE sync_queue SET status = 'queued' WHERE status = 'syncing' AND updated_at < ?").run(
        iso(this.now() - SYNC_LEASE_MS),
      );
      if (this.q("SELECT 1 FROM sync_queue WHERE status = 'syncing' LIMIT 1").get() !== null) return [];
      const rows = this.q(
        "SELECT * FROM sync_queue WHERE status = 'queued' ORDER BY mutation_id LIMIT ?",
      ).all(limit) as QueueRow[];
      const at = iso(this.now());
      const claim = this.q("UPDATE sync_queue SET status = 'syncing', updated_at = ? WHERE mutation_id = ?");
      const out: Mutation[] = [];
      for (const r of rows) {
        if (r.next_attempt_at !== null && r.next_attempt_at > now) break;
        if (r.op === "delete") {
          out.push({
            mutation_id: r.mutation_id,
            op: "delete",
            id: r.memory_id,
            hlc: r.hlc,
            base_hlc: r.base_hlc,
          });
        } else {
          if (r.payload === null) break; // cannot happen for an unsynced row; never send a gap
          out.push({
            mutation_id: r.mutation_id,
            op: r.op,
            id: r.memory_id,
            hlc: r.hlc,
            base_hlc: r.base_hlc,
            data: JSON.parse(r.payload) as MemoryData,
          });
        }
        claim.run(at, r.mutation_id);
      }
      return out;
    });
  }

  settle(results: PushResult[]): void {
    this.write(() => {
      const at = iso(this.now());
      const find = this.q("SELECT * FROM sync_queue WHERE mutation_id = ?");
      for (const r of results) {
        if (r.mutation_id === null) continue;
        const row = find.get(r.mutation_id) as QueueRow | null;
        if (!row || row.status === "synced") continue;
        if (r.status === "stale" && r.current) {
          // The VPS kept a newer version: show it now (the feed cursor may be past it already).
          this.syncClock();
          this.applyRemote(r.current, at, { applied: 0, skipped: 0, conflicts: 0 });
        }
        if (r.status === "applied" || r.status === "stale" || r.status === "duplicate") {
          this.q(
            // The payload is only needed until the VPS has the write; dropping it keeps the
            // database from holding every memory twice.
            `UPDATE sync_queue SET status = 'synced', payload = NULL, last_error = NULL, next_attempt_at = NULL,
                                   updated_at = ?
             WHERE mutation_id = ?`,
          ).run(at, row.mutation_id);
          // synced_at says the memory's current version is on the VPS.
          this.q("UPDATE memories SET synced_at = ? WHERE id = ? AND hlc = ?").run(
            at,
            row.memory_id,
            row.hlc,
          );
        } else {
          const reason = [r.code, r.reason].filter(Boolean).join(": ") || "rejected by the VPS";
          this.q(
            `UPDATE sync_queue SET status = ?, last_error = ?, retry_count = retry_count + 1, updated_at = ?
             WHERE mutation_id = ?`,
          ).run(r.retryable ? "queued" : "failed", reason, at, row.mutation_id);
        }
      }
      this.q("UPDATE sync_queue SET status = 'queued', updated_at = ? WHERE status = 'syncing'").run(at);
      this.putMeta(META.hlc, this.clock.current());
    });
  }

  release(mutationIds: number[], error: string, nextAttemptAt: number): void {
    this.write(() => {
      const stmt = this.q(
        `UPDATE sync_queue SET status = 'queued', retry_count = retry_count + 1, next_attempt_at = ?,
                               last_error = ?, updated_at = ?
         WHERE mutation_id = ? AND status IN ('syncing', 'queued')`,
      );
      const at = iso(this.now());
      for (const id of mutationIds) stmt.run(Math.floor(nextAttemptAt), error, at, id);
    });
  }

  restamp(mutationIds: number[], stamp?: () => string): void {
    this.write(() => {
      this.syncClock();
      // The store's own clock by default: it has seen every stamp this device wrote or received,
      // so a new stamp is never below the version a write replaced (its base_hlc).
      this.restampRows(mutationIds, stamp ?? (() => this.clock.tick()));
      this.putMeta(META.hlc, this.clock.current());
    });
  }

  /** Inside a write transaction: fresh stamps for unsent queue rows, in mutation order. */
  private restampRows(mutationIds: number[], stamp: () => string): void {
    const find = this.q("SELECT * FROM sync_queue WHERE mutation_id = ?");
    for (const id of [...mutationIds].sort((a, b) => a - b)) {
      const row = find.get(id) as QueueRow | null;
      if (!row || (row.status !== "queued" && row.status !== "syncing")) continue;
      const next = stamp();
      if (!isHlc(next)) throw new DionysusError("invalid_input", `restamp: not an HLC stamp: ${next}`);
      this.q("UPDATE sync_queue SET hlc = ?, updated_at = ? WHERE mutation_id = ?").run(
        next,
        iso(this.now()),
        id,
      );
      // Later writes of the same memory were based on the old stamp: keep the chain intact.
      this.q("UPDATE sync_queue SET base_hlc = ? WHERE memory_id = ? AND base_hlc = ?").run(
        next,
        row.memory_id,
        row.hlc,
      );
      this.q("UPDATE memories SET hlc = ?, origin_device = ? WHERE id = ? AND hlc = ?").run(
        next,
        this.currentDeviceId,
        row.memory_id,
        row.hlc,
      );
      this.q("UPDATE memories SET base_hlc = ? WHERE id = ? AND base_hlc = ?").run(
        next,
        row.memory_id,
        row.hlc,
      );
      this.clock.receive(next);
    }
  }

  // ---- pull side ------------------------------------------------------------------------

  cursor(): string | undefined {
    return this.getMeta(META.cursor);
  }

  applyChanges(changes: Change[], cursor: string, conflicts: ConflictEntry[] = []): ApplyChangesResult {
    return this.write(() => {
      this.syncClock();
      const result: ApplyChangesResult = { applied: 0, skipped: 0, conflicts: 0 };
      const at = iso(this.now());
      for (const { seq: _seq, ...change } of changes) this.applyRemote(change, at, result);
      const record = this.q(
        `INSERT OR IGNORE INTO conflicts (memory_id, winner_hlc, loser_hlc, loser, resolved_at)
         VALUES (?, ?, ?, ?, ?)`,
      );
      for (const c of conflicts)
        record.run(
          c.memory_id,
          c.winner_hlc,
          c.loser_hlc,
          c.loser ? JSON.stringify(c.loser) : null,
          c.resolved_at,
        );
      this.putMeta(META.cursor, cursor);
      this.putMeta(META.hlc, this.clock.current());
      return result;
    });
  }

  applyIdentity(memories: Memory[]): number {
    return this.write(() => {
      this.syncClock();
      const result: ApplyChangesResult = { applied: 0, skipped: 0, conflicts: 0 };
      const at = iso(this.now());
      for (const m of memories) this.applyRemote(m, at, result);
      this.putMeta(META.hlc, this.clock.current());
      return result.applied;
    });
  }

  /**
   * Inside a write transaction: last-write-wins between a remote version and the local row, by
   * the shared rule in core/conflict.ts. A loser goes to the conflict log only when the two writes
   * were concurrent: the winner's writer had not seen the loser (its `base_hlc` is not the loser's
   * stamp). Only local writes are contested; without a `base_hlc` (older peers), any overwritten
   * local write counts as a conflict.
   */
  private applyRemote(
    change: Memory & { base_hlc?: string | null },
    at: string,
    result: ApplyChangesResult,
  ): void {
    const { base_hlc, ...rest } = change;
    const remote: Memory = rest.deleted
      ? { ...rest, content: "", tags: [], metadata: {}, embedding: null }
      : { ...rest, embedding: rest.embedding ?? null };
    const base = base_hlc ?? null;
    this.clock.receive(remote.hlc);
    const row = this.rowById(remote.id);
    if (!row) {
      this.storeRemote(remote, base, at);
      result.applied++;
      return;
    }
    const local = toMemory(row);
    const lww = resolve(local, remote, {
      incomingBase: base_hlc,
      contestable: row.source === "local",
      withoutBase: "conflict",
      currentBase: row.base_hlc,
      ownNode: this.currentDeviceId,
      sameState,
    });
    if (lww.winner === "same") {
      // The same version: our own write echoed back, or a page seen before, or the VPS adding
      // the vector of this version (stored, never treated as a content change).
      if (row.synced_at === null) this.q("UPDATE memories SET synced_at = ? WHERE rid = ?").run(at, row.rid);
      const vector = remote.embedding ? JSON.stringify(remote.embedding) : null;
      if (vector !== null && vector !== row.embedding && row.deleted === 0)
        this.q("UPDATE memories SET embedding = ? WHERE rid = ?").run(vector, row.rid);
      return;
    }
    if (lww.winner === "current") {
      // The local version is newer. An older version of our own is history, not a conflict.
      if (lww.conflict) this.logConflict(remote.id, row.hlc, remote);
      result.skipped++;
      return;
    }
    if (lww.conflict) {
      this.logConflict(remote.id, remote.hlc, local);
      result.conflicts++;
    }
    this.storeRemote(remote, base, at);
    result.applied++;
  }

  /** Inside a write transaction: stores a remote version as the memory's current one. */
  private storeRemote(m: Memory, base: string | null, at: string): void {
    this.q(
      `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                             base_hlc, deleted, origin_device, source, synced_at, last_accessed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'vps', ?, NULL)
       ON CONFLICT (id) DO UPDATE SET
         content = excluded.content, kind = excluded.kind, tags = excluded.tags,
         metadata = excluded.metadata, embedding = excluded.embedding, created_at = excluded.created_at,
         updated_at = excluded.updated_at, hlc = excluded.hlc, base_hlc = excluded.base_hlc,
         deleted = excluded.deleted, origin_device = excluded.origin_device, source = 'vps',
         synced_at = excluded.synced_at`,
    ).run(
      m.id,
      m.content,
      m.kind,
      JSON.stringify(m.tags),
      JSON.stringify(m.metadata),
      m.embedding ? JSON.stringify(m.embedding) : null,
      m.created_at,
      m.updated_at,
      m.hlc,
      base,
      m.deleted ? 1 : 0,
      m.origin_device,
      at,
    );
  }

  resetCache(): void {
    this.write(() => {
      this.q(
        `DELETE FROM memories WHERE source = 'vps' AND NOT EXISTS
           (SELECT 1 FROM sync_queue AS q WHERE q.memory_id = memories.id AND q.status != 'synced')`,
      ).run();
      this.q("DELETE FROM meta WHERE key = ?").run(META.cursor);
    });
  }

  conflicts(limit: number): ConflictEntry[] {
    return this.guard(() =>
      (
        this.q("SELECT * FROM conflicts ORDER BY id DESC LIMIT ?").all(limit) as {
          memory_id: string;
          winner_hlc: string;
          loser_hlc: string;
          loser: string | null;
          resolved_at: string;
        }[]
      ).map((r) => ({
        memory_id: r.memory_id,
        winner_hlc: r.winner_hlc,
        loser_hlc: r.loser_hlc,
        loser: r.loser === null ? null : (JSON.parse(r.loser) as Memory),
        resolved_at: r.resolved_at,
      })),
    );
  }

  // ---- clock and settings ---------------------------------------------------------------

  observeHlc(stamp: string): void {
    if (!isHlc(stamp)) return;
    this.write(() => {
      this.syncClock();
      this.clock.receive(stamp);
      this.putMeta(META.hlc, this.clock.current());
    });
  }

  setClockOffset(ms: number): void {
    if (!Number.isFinite(ms))
      throw new DionysusError("invalid_input", "clock offset must be a finite number");
    this.write(() => {
      const corrected = Math.round(ms);
      const movedBack = corrected < this.offsetMs;
      this.offsetMs = corrected;
      this.putMeta(META.clockOffset, String(corrected));
      if (!movedBack) return;
      // The device clock was ahead: stamps issued since are in the future and the VPS refuses
      // them. Restart the clock from the newest stamp the VPS has accepted or sent, so new
      // writes follow corrected time; unsynced writes get fresh stamps through restamp().
      // Never below a stamp this device has seen: the versions the VPS accepted or sent, and the
      // versions that unsent edits replaced (their base, unless that base is itself unsent).
      const row = this.q(
        `SELECT max(h) AS h FROM (
           SELECT max(hlc) AS h FROM memories WHERE synced_at IS NOT NULL OR source = 'vps'
           UNION ALL
           SELECT max(q.base_hlc) FROM sync_queue AS q
           WHERE q.status IN ('queued', 'syncing') AND NOT EXISTS
             (SELECT 1 FROM sync_queue AS p WHERE p.hlc = q.base_hlc AND p.status IN ('queued', 'syncing')))`,
      ).get() as { h: string | null };
      this.clock = new HlcClock(this.currentDeviceId, this.clockNow, row.h ?? undefined);
      this.putMeta(META.hlc, this.clock.current());
    });
  }

  getMeta(key: string): string | undefined {
    return this.guard(() => this.readMeta(key));
  }

  setMeta(key: string, value: string): void {
    this.write(() => this.putMeta(key, value));
  }

  // ---- size and eviction ----------------------------------------------------------------

  sizeBytes(): number {
    let total = 0;
    for (const p of [this.path, `${this.path}-wal`]) {
      try {
        total += statSync(p).size;
      } catch {
        // no WAL file right now
      }
    }
    return total;
  }

  /** Checkpoints the WAL into the main file and gives free pages back to the file system. */
  private compact(): void {
    this.guard(() => {
      this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").all();
      this.db.query("PRAGMA incremental_vacuum").all();
      this.db.query("PRAGMA wal_checkpoint(TRUNCATE)").all();
    });
  }

  evict(limitBytes: number): number {
    if (this.sizeBytes() <= limitBytes) return 0;
    this.compact();
    let evicted = 0;
    for (let round = 0; round < 50 && this.sizeBytes() > limitBytes; round++) {
      const excess = this.sizeBytes() - limitBytes;
      const candidates = this.guard(
        () =>
          this.q(
            `SELECT rid, length(CAST(content AS BLOB)) + length(tags) + length(metadata)
                      + coalesce(length(embedding), 0) AS bytes
             FROM memories AS m
             WHERE source = 'vps' AND NOT EXISTS
               (SELECT 1 FROM sync_queue AS q WHERE q.memory_id = m.id AND q.status != 'synced')
             ORDER BY coalesce(last_accessed_at, updated_at)
             LIMIT 2000`,
          ).all() as { rid: number; bytes: number }[],
      );
      if (candidates.length === 0) break;
      // A row costs roughly its text twice over (table + full-text index) plus overhead; the
      // loop measures again after each round, so the estimate only needs to be close.
      const picked: number[] = [];
      let freed = 0;
      for (const c of candidates) {
        picked.push(c.rid);
        freed += c.bytes * 2 + 200;
        if (freed >= excess) break;
      }
      this.write(() => {
        const del = this.q("DELETE FROM memories WHERE rid = ?");
        for (const rid of picked) del.run(rid);
      });
      // Deleting from FTS5 only appends delete markers; merging the segments frees the pages.
      this.guard(() => this.db.run("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')"));
      this.compact();
      evicted += picked.length;
    }
    return evicted;
  }

  close(): void {
    try {
      this.db.run("PRAGMA optimize");
    } catch {
      // best effort
    }
    this.db.close();
  }
}
