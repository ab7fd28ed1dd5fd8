/**
 * Export and import in the SQLite edge store: every row read in order for `dionysus export`, and
 * versions from an export file written by last-write-wins for `dionysus import`.
 *
 * An imported version that wins is a local write: it goes to the sync queue like any other, so it
 * reaches the VPS. The VPS takes only stamps of the pushing device, so a version stamped by another
 * node (another device's or another user's export) keeps its wall-clock time and counter and takes
 * this device's node: it orders among the versions of that memory where it was written, and the VPS
 * decides against what it holds by the same last-write-wins rule (an older import is `stale` there
 * and the VPS's version comes back). A version whose state (content, kind, tags, metadata, scope,
 * occurred_at, deleted) equals the stored one is left
 * alone, so an import is idempotent; one older than the stored version never overwrites it. A
 * record with the stored version's stamp but another state was edited outside Dionysus (a Markdown
 * file in Obsidian): it is written as a new edit, with a new stamp.
 *
 * A written version gets the source `import`. A private memory (kept on this device only) stays
 * private and is never queued; a stored memory keeps its own private flag, so an import never
 * shares a private memory nor takes a shared one off the VPS.
 */
import { resolveFilter } from "../../../core/filter.ts";
import { compareHlc, formatHlc, parseHlc } from "../../../core/hlc.ts";
import type { LocalMemory, Memory } from "../../../core/memory.ts";
import type { MemoryData, Mutation } from "../../../core/protocol/sync.ts";
import type { ImportCounts, ImportVersion, Transfer, TransferFilter } from "../types.ts";
import { iso, META, type SqliteContext } from "./context.ts";
import { filterSql } from "./filter-sql.ts";
import { enqueue } from "./queue.ts";
import { MEMORY_COLUMNS, type MemoryRow, sameState, toLocalMemory, toMemory, toMemoryData } from "./rows.ts";

/** A batch with at least this many new memories is indexed set-based (see `batchWriter`). */
const BULK_MIN = 500;
/** The page cache of a bulk batch: 64 MiB (negative: in KiB). */
const BULK_CACHE_KIB = -65536;

/** A stored memory as the import compares with it. */
interface Stored {
  memory: Memory;
  private: boolean;
}

interface BatchWriter {
  insert(m: Memory, isPrivate: boolean): void;
  update(m: Memory, baseHlc: string): void;
  enqueue(
    memoryId: string,
    op: Mutation["op"],
    hlc: string,
    baseHlc: string | null,
    payload: MemoryData | null,
  ): void;
  /** Indexes what is left, restores the trigger, and records the last mutation number. */
  finish(): void;
  /** After the transaction, committed or not: gives back the page cache and the statement. */
  close(): void;
}

export function sqliteTransfer(ctx: SqliteContext): Transfer {
  const { q, guard, write } = ctx;

  /** Inside a write transaction: writes one imported version if it wins; says what happened.
   * `stored` holds the batch's stored rows by id and is kept current as the batch writes. */
  function importOne(
    { memory: v, private: wantPrivate }: ImportVersion,
    stored: Map<string, Stored>,
    out: BatchWriter,
  ): keyof ImportCounts {
    const parsed = parseHlc(v.hlc);
    if (!parsed) return "older"; // validated by the caller; never stored
    const own = ctx.currentDeviceId;
    const row = stored.get(v.id);
    const current = row?.memory;
    const state: Memory = v.deleted ? { ...v, content: "", tags: [], metadata: {}, embedding: null } : v;
    if (current && sameState(current, state)) return "unchanged";
    let hlc = parsed.node === own ? v.hlc : formatHlc({ ...parsed, node: own });
    let updated_at = v.updated_at;
    if (current && (current.hlc === v.hlc || current.hlc === hlc)) {
      // The stored version itself, but another state: the record was edited outside Dionysus
      // (a Markdown file in Obsidian). That edit is a new version, stamped now.
      hlc = ctx.stamp();
      updated_at = iso(ctx.clockNow());
    }
    const incoming: Memory = { ...state, hlc, updated_at, source: "import" };
    if (current && compareHlc(hlc, current.hlc) < 0) return "older";
    const isPrivate = row ? row.private : wantPrivate;
    if (!current) {
      out.insert(incoming, isPrivate);
      // A delete of a memory this device never had is kept as a tombstone (it still wins over an
      // older version arriving later) and sent, so the VPS learns it too. Private: never sent.
      if (!isPrivate) out.enqueue(v.id, incoming.deleted ? "delete" : "create", hlc, null, dataOf(incoming));
    } else {
      out.update(incoming, current.hlc);
      const op = incoming.deleted ? "delete" : current.deleted ? "create" : "update";
      if (!isPrivate) out.enqueue(v.id, op, hlc, current.hlc, dataOf(incoming));
    }
    stored.set(v.id, { memory: incoming, private: isPrivate });
    ctx.clock.receive(hlc);
    return current ? "updated" : "created";
  }

  const dataOf = (m: Memory) => (m.deleted ? null : toMemoryData(m));

  function fields(m: Memory) {
    return [
      m.content,
      m.kind,
      JSON.stringify(m.tags),
      JSON.stringify(m.metadata),
      m.embedding ? JSON.stringify(m.embedding) : null,
      m.created_at,
      m.updated_at,
      m.hlc,
      m.scope,
      m.source,
      m.occurred_at,
    ] as const;
  }

  /** The stored rows of a batch's ids, read in one query. */
  function storedRows(versions: ImportVersion[]): Map<string, Stored> {
    const ids = JSON.stringify(versions.map((v) => v.memory.id));
    const rows = q(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE id IN (SELECT value FROM json_each(?))`).all(
      ids,
    ) as MemoryRow[];
    return new Map(rows.map((r) => [r.id, { memory: toMemory(r), private: r.private === 1 }]));
  }

  /**
   * Inside a write transaction: the writes of one batch. Queue rows take consecutive mutation
   * numbers from one read of the counter, written back once by `finish`. In bulk mode the
   * full-text insert trigger is dropped for the batch and the new rows are indexed in one
   * `INSERT … SELECT` (several times faster than row by row), then the trigger is created again
   * from its own stored SQL: all in the batch's transaction, so a crash leaves either the rows,
   * their index entries and the trigger, or none of the batch.
   */
  function batchWriter(bulk: boolean): BatchWriter {
    let nextMutation = (
      q(
        `SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${META.lastMutation}'), 0),
                    coalesce((SELECT max(mutation_id) FROM sync_queue), 0)) + 1 AS next`,
      ).get() as { next: number }
    ).next;
    const firstMutation = nextMutation;
    const at = iso(ctx.now());
    const insertSql = `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                             scope, source, occurred_at, base_hlc, deleted, origin_device, origin, private,
                             synced_at, last_accessed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 'local', ?, NULL, NULL)`;
    let trigger: string | undefined;
    /** Rows above this rid were inserted without their index entries. */
    let indexedUpTo = 0;
    let unindexed = false;
    let cacheSize: number | undefined;
    if (bulk) {
      // The batch's rows, queue rows and index entries touch more pages than the default 2 MiB
      // cache holds; with 64 MiB the B-trees stay in memory (measured: about a quarter faster).
      cacheSize = (q("PRAGMA cache_size").get() as { cache_size: number }).cache_size;
      ctx.db.run(`PRAGMA cache_size = ${BULK_CACHE_KIB}`);
      trigger = (
        q("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'memories_fts_insert'").get() as {
          sql: string;
        } | null
      )?.sql;
      if (trigger) {
        indexedUpTo = (q("SELECT coalesce(max(rid), 0) AS n FROM memories").get() as { n: number }).n;
        ctx.db.run("DROP TRIGGER memories_fts_insert");
      }
    }
    /** Indexes the rows inserted since the last call (set-based). */
    const indexNew = () => {
      if (!trigger || !unindexed) return;
      q(
        `INSERT INTO memories_fts (rowid, content, tags)
         SELECT rid, content, tags FROM memories WHERE rid > ? AND deleted = 0`,
      ).run(indexedUpTo);
      indexedUpTo = (q("SELECT coalesce(max(rid), 0) AS n FROM memories").get() as { n: number }).n;
      unindexed = false;
    };
    // A statement prepared while the trigger is dropped is compiled without it: never cache it.
    const insert = trigger ? ctx.db.prepare(insertSql) : q(insertSql);
    return {
      insert(m, isPrivate) {
        insert.run(m.id, ...fields(m), m.deleted ? 1 : 0, ctx.currentDeviceId, isPrivate ? 1 : 0);
        unindexed = true;
      },
      update(m, baseHlc) {
        // The update trigger takes the old row's entries out of the index: they must be there.
        indexNew();
        q(
          `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, embedding = ?, created_at = ?,
                               updated_at = ?, hlc = ?, scope = ?, source = ?, occurred_at = ?, base_hlc = ?,
                               deleted = ?, origin_device = ?, origin = 'local', synced_at = NULL
           WHERE id = ?`,
        ).run(...fields(m), baseHlc, m.deleted ? 1 : 0, ctx.currentDeviceId, m.id);
      },
      enqueue(memoryId, op, hlc, baseHlc, payload) {
        q(
          `INSERT INTO sync_queue (mutation_id, memory_id, op, hlc, base_hlc, payload, status, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
        ).run(
          nextMutation++,
          memoryId,
          op,
          hlc,
          baseHlc,
          payload === null ? null : JSON.stringify(payload),
          at,
          at,
        );
      },
      finish() {
        if (trigger) {
          indexNew();
          ctx.db.run(trigger);
        }
        if (nextMutation > firstMutation) ctx.putMeta(META.lastMutation, String(nextMutation - 1));
      },
      close() {
        if (trigger) insert.finalize();
        if (cacheSize !== undefined) ctx.db.run(`PRAGMA cache_size = ${cacheSize}`);
      },
    };
  }

  return {
    *exportMemories(options: TransferFilter = {}): Generator<LocalMemory> {
      const f = filterSql(resolveFilter(options.filter, new Date(ctx.now())));
      const args = f.params;
      const sql = `SELECT ${MEMORY_COLUMNS} FROM memories AS m WHERE ${options.includeDeleted ? "1" : "m.deleted = 0"}${f.sql} ORDER BY m.rid`;
      // One read transaction: the export is a consistent snapshot while the daemon writes on.
      const stmt = guard(() => ctx.db.prepare(sql));
      guard(() => ctx.db.run("BEGIN"));
      try {
        for (const row of stmt.iterate(...args) as IterableIterator<MemoryRow>) yield toLocalMemory(row);
      } finally {
        if (ctx.db.inTransaction) ctx.db.run("COMMIT");
        stmt.finalize();
      }
    },

    resendOwnVersions(): number {
      return write(() => {
        ctx.syncClock();
        const rows = q(
          `SELECT ${MEMORY_COLUMNS} FROM memories AS m
           WHERE origin = 'local' AND private = 0 AND substr(hlc, 24) = ?
             AND NOT EXISTS (SELECT 1 FROM sync_queue AS q WHERE q.memory_id = m.id AND q.status != 'synced')
           ORDER BY hlc`,
        ).all(ctx.currentDeviceId) as MemoryRow[];
        for (const row of rows) {
          const m = toMemory(row);
          if (m.deleted) enqueue(ctx, m.id, "delete", m.hlc, row.base_hlc, null);
          else enqueue(ctx, m.id, row.base_hlc ? "update" : "create", m.hlc, row.base_hlc, toMemoryData(m));
        }
        return rows.length;
      });
    },

    importMemories(versions: ImportVersion[]): ImportCounts {
      let out: BatchWriter | undefined;
      try {
        return write(() => {
          ctx.syncClock();
          const counts: ImportCounts = { created: 0, updated: 0, unchanged: 0, older: 0 };
          const stored = storedRows(versions);
          out = batchWriter(versions.length - stored.size >= BULK_MIN);
          for (const v of versions) counts[importOne(v, stored, out)]++;
          out.finish();
          ctx.putMeta(META.hlc, ctx.clock.current());
          return counts;
        });
      } finally {
        guard(() => out?.close());
      }
    },
  };
}
