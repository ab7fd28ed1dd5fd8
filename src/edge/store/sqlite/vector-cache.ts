/**
 * The stored vectors of the current embedder kept in memory, packed as int8 (100 bytes per memory:
 * 10 MB for 100,000), so that hybrid recall scores its keyword candidates without reading them from
 * SQLite (reading 300 candidates' rows took 2.5 ms of a 100,000-memory recall, more on a loaded
 * machine; from memory they cost microseconds).
 *
 * Kept true without rebuilding after every write:
 * - this connection's changes to `memory_vectors` (a vector stored, dropped by the trigger when a
 *   memory's content changes or it is deleted, or a cascade delete) are logged by TEMP triggers
 *   into a TEMP table, and each lookup first drops the cached vectors of the rowids logged since
 *   the last one (they are read again from the table when asked for);
 * - a commit by another connection (the CLI writing while the daemon runs) moves
 *   `PRAGMA data_version`: the cache is then emptied and filled again on the next lookup.
 * Where the TEMP objects cannot be made, nothing is cached and every lookup reads the table.
 *
 * A write rolled back rolls back its log rows too (the TEMP table is part of the transaction).
 */
import type { SqliteContext } from "./context.ts";

/** The log is cut when it holds this many rows already read. */
const LOG_KEEP = 10_000;

export class VectorCache {
  /** rid → slot + 1 (0: not cached). */
  private slotOf = new Int32Array(0);
  /** Slot → vector, `dims` bytes each. */
  private data = new Int8Array(0);
  private free: number[] = [];
  private slots = 0;
  private dataVersion = -1;
  private logSeen = 0;
  private logCut = 0;
  private tracking: boolean | undefined;

  constructor(
    private readonly ctx: SqliteContext,
    private readonly model: string,
    private readonly dims: number,
  ) {}

  /** The cached vector of `rid` (a view into the cache: read it before the next call), or
   * undefined when it must be read from the table. Call `refresh()` first, once per recall. */
  get(rid: number): Int8Array | undefined {
    const s = rid < this.slotOf.length ? this.slotOf[rid]! : 0;
    return s === 0 ? undefined : this.data.subarray((s - 1) * this.dims, s * this.dims);
  }

  /** Caches `vector` (int8 bytes, `dims` of them) for `rid`. */
  put(rid: number, vector: Uint8Array): void {
    if (!this.tracking) return;
    if (rid >= this.slotOf.length) {
      const grown = new Int32Array(Math.max(rid + 1, this.slotOf.length * 2, 1024));
      grown.set(this.slotOf);
      this.slotOf = grown;
    }
    let s = this.slotOf[rid]!;
    if (s === 0) {
      const slot = this.free.pop() ?? this.slots++;
      if ((slot + 1) * this.dims > this.data.length) {
        const grown = new Int8Array(Math.max((slot + 1) * this.dims, this.data.length * 2, 1024 * this.dims));
        grown.set(this.data);
        this.data = grown;
      }
      s = slot + 1;
      this.slotOf[rid] = s;
    }
    this.data.set(new Int8Array(vector.buffer, vector.byteOffset, this.dims), (s - 1) * this.dims);
  }

  private drop(rid: number): void {
    const s = rid < this.slotOf.length ? this.slotOf[rid]! : 0;
    if (s === 0) return;
    this.slotOf[rid] = 0;
    this.free.push(s - 1);
  }

  private clear(): void {
    this.slotOf = new Int32Array(0);
    this.data = new Int8Array(0);
    this.free = [];
    this.slots = 0;
  }

  /** Makes the TEMP log and its triggers once; false when they cannot be made. */
  private track(): boolean {
    if (this.tracking !== undefined) return this.tracking;
    try {
      const { db } = this.ctx;
      db.run("CREATE TEMP TABLE IF NOT EXISTS vector_log (id INTEGER PRIMARY KEY, rid INTEGER NOT NULL)");
      db.run(`CREATE TEMP TRIGGER IF NOT EXISTS vector_log_insert AFTER INSERT ON main.memory_vectors
              BEGIN INSERT INTO vector_log (rid) VALUES (new.rid); END`);
      db.run(`CREATE TEMP TRIGGER IF NOT EXISTS vector_log_update AFTER UPDATE ON main.memory_vectors
              BEGIN INSERT INTO vector_log (rid) VALUES (new.rid); END`);
      db.run(`CREATE TEMP TRIGGER IF NOT EXISTS vector_log_delete AFTER DELETE ON main.memory_vectors
              BEGIN INSERT INTO vector_log (rid) VALUES (old.rid); END`);
      this.logSeen = (
        this.ctx.q("SELECT coalesce(max(id), 0) AS n FROM vector_log").get() as { n: number }
      ).n;
      this.tracking = true;
    } catch {
      this.tracking = false;
    }
    return this.tracking;
  }

  /** Brings the cache up to date with the table: drops what this connection changed since the
   * last call, or everything when another connection committed; fills an empty cache with every
   * stored vector of the model. Returns false when nothing is cached (read the table). */
  refresh(): boolean {
    if (!this.track()) return false;
    const { q } = this.ctx;
    const dv = (q("PRAGMA data_version").get() as { data_version: number }).data_version;
    const changed = q("SELECT id, rid FROM vector_log WHERE id > ? ORDER BY id").all(this.logSeen) as {
      id: number;
      rid: number;
    }[];
    if (changed.length > 0) this.logSeen = changed.at(-1)!.id;
    if (dv !== this.dataVersion) {
      this.clear();
      this.dataVersion = dv;
      for (const row of q("SELECT rid, vector FROM memory_vectors WHERE model = ?").iterate(
        this.model,
      ) as Iterable<{
        rid: number;
        vector: Uint8Array;
      }>)
        if (row.vector.length === this.dims) this.put(row.rid, row.vector);
      // The fill read the table as it is now: what the log held is already in it.
    } else for (const c of changed) this.drop(c.rid);
    if (this.logSeen - this.logCut > LOG_KEEP) {
      try {
        // The last row read stays, so that the next id is still above it.
        q("DELETE FROM vector_log WHERE id < ?").run(this.logSeen);
        this.logCut = this.logSeen;
      } catch {
        // Best effort: the log is cut on a later call.
      }
    }
    return true;
  }
}
