/**
 * The edge's cache of VPS answers: `<data_dir>/vps-cache.db`, a small SQLite file of its
 * own (the daemon and one-shot CLI commands share it; WAL), apart from the memory database so
 * that it never takes part in sync or eviction of memories. Entries expire after `cache_ttl_s`
 * seconds (5 minutes by default; 0 turns the cache off). Keys come from `recallCacheKey` and
 * `graphCacheKey` (src/core/router.ts), scoped by VPS URL and user.
 *
 * The cache is an optimisation: if its file cannot be read or written, requests go to the VPS.
 */
import { Database } from "bun:sqlite";
import { isFresh } from "../../core/router.ts";

/** Most entries kept; the oldest go first. */
export const MAX_CACHE_ENTRIES = 1000;

export interface HeavyCacheOptions {
  path: string;
  ttlS: number;
  now?: () => number;
  log?: (message: string, err?: unknown) => void;
}

export class HeavyCache {
  private db: Database | undefined;
  private readonly now: () => number;
  private writes = 0;

  constructor(private readonly opts: HeavyCacheOptions) {
    this.now = opts.now ?? Date.now;
  }

  get ttlS(): number {
    return this.opts.ttlS;
  }

  private open(): Database | undefined {
    if (this.db) return this.db;
    try {
      const db = new Database(this.opts.path, { create: true });
      db.exec("PRAGMA busy_timeout = 2000");
      db.exec("PRAGMA journal_mode = WAL");
      // A cache: losing the last writes in a power cut costs a VPS request, not data.
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec(`CREATE TABLE IF NOT EXISTS vps_cache (
        key       TEXT PRIMARY KEY NOT NULL,
        stored_at INTEGER NOT NULL,
        body      TEXT NOT NULL
      ) WITHOUT ROWID`);
      db.exec("CREATE INDEX IF NOT EXISTS vps_cache_age ON vps_cache (stored_at)");
      this.db = db;
      return db;
    } catch (err) {
      this.opts.log?.(`the VPS answer cache at ${this.opts.path} cannot be opened`, err);
      return undefined;
    }
  }

  /** The value stored under `key` if it is still fresh. */
  get<T>(key: string): T | undefined {
    if (this.opts.ttlS <= 0) return undefined;
    const db = this.open();
    if (!db) return undefined;
    try {
      const row = db.query("SELECT stored_at, body FROM vps_cache WHERE key = ?").get(key) as {
        stored_at: number;
        body: string;
      } | null;
      if (!row || !isFresh(row.stored_at, this.opts.ttlS, this.now())) return undefined;
      return JSON.parse(row.body) as T;
    } catch (err) {
      this.opts.log?.("reading the VPS answer cache failed", err);
      return undefined;
    }
  }

  put(key: string, value: unknown): void {
    if (this.opts.ttlS <= 0) return;
    const db = this.open();
    if (!db) return;
    try {
      const now = this.now();
      db.query("INSERT OR REPLACE INTO vps_cache (key, stored_at, body) VALUES (?, ?, ?)").run(
        key,
        now,
        JSON.stringify(value),
      );
      if (++this.writes % 50 === 1) this.prune(db, now);
    } catch (err) {
      this.opts.log?.("writing the VPS answer cache failed", err);
    }
  }

  /** Forgets every entry (after a consolidation changed the memories). */
  clear(): void {
    const db = this.open();
    try {
      db?.exec("DELETE FROM vps_cache");
    } catch (err) {
      this.opts.log?.("clearing the VPS answer cache failed", err);
    }
  }

  private prune(db: Database, now: number): void {
    db.query("DELETE FROM vps_cache WHERE stored_at <= ?").run(now - this.opts.ttlS * 1000);
    db.query(
      `DELETE FROM vps_cache WHERE key IN (
         SELECT key FROM vps_cache ORDER BY stored_at DESC LIMIT -1 OFFSET ?)`,
    ).run(MAX_CACHE_ENTRIES);
  }

  close(): void {
    this.db?.close();
    this.db = undefined;
  }
}
