/**
 * Export and import in the SQLite edge store: every row read in order for `dionysus export`, and
 * versions from an export file written by last-write-wins for `dionysus import`.
 *
 * An imported version that wins is a local write: it goes to the sync queue like any other, so it
 * reaches the VPS. The VPS takes only stamps of the pushing device, so a version stamped by another
 * node (another device's or another user's export) keeps its wall-clock time and counter and takes
 * this device's node: it orders among the versions of that memory where it was written, and the VPS
 * decides against what it holds by the same last-write-wins rule (an older import is `stale` there
 * and the VPS's version comes back). A version whose stamp is already stored, or whose state
 * (content, kind, tags, metadata, deleted) equals the stored one, is left alone, so an import is
 * idempotent; one older than the stored version never overwrites it.
 */
import { compareHlc, formatHlc, parseHlc } from "../../../core/hlc.ts";
import type { LocalMemory, Memory } from "../../../core/memory.ts";
import type { ImportCounts, Transfer, TransferFilter } from "../types.ts";
import { META, type SqliteContext } from "./context.ts";
import { enqueue } from "./queue.ts";
import { MEMORY_COLUMNS, type MemoryRow, sameState, toLocalMemory, toMemory, toMemoryData } from "./rows.ts";

export function sqliteTransfer(ctx: SqliteContext): Transfer {
  const { q, guard, write } = ctx;

  /** Inside a write transaction: writes one imported version if it wins; says what happened. */
  function importOne(v: Memory): keyof ImportCounts {
    const parsed = parseHlc(v.hlc);
    if (!parsed) return "older"; // validated by the caller; never stored
    const own = ctx.currentDeviceId;
    const hlc = parsed.node === own ? v.hlc : formatHlc({ ...parsed, node: own });
    const incoming: Memory = v.deleted
      ? { ...v, hlc, content: "", tags: [], metadata: {}, embedding: null }
      : { ...v, hlc };
    const row = ctx.rowById(v.id);
    const current = row ? toMemory(row) : undefined;
    if (current && (current.hlc === v.hlc || current.hlc === hlc || sameState(current, incoming)))
      return "unchanged";
    if (current && compareHlc(hlc, current.hlc) < 0) return "older";
    if (!current && incoming.deleted) {
      // A delete of a memory this device never had: kept as a tombstone so that it still wins
      // over an older version arriving later, and sent so the VPS learns it too.
      insertRow(incoming);
      enqueue(ctx, v.id, "delete", hlc, null, null);
    } else if (!current) {
      insertRow(incoming);
      enqueue(ctx, v.id, "create", hlc, null, toMemoryData(incoming));
    } else {
      q(
        `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, embedding = ?, created_at = ?,
                             updated_at = ?, hlc = ?, base_hlc = ?, deleted = ?, origin_device = ?,
                             source = 'local', synced_at = NULL
         WHERE id = ?`,
      ).run(...fields(incoming), current.hlc, incoming.deleted ? 1 : 0, own, v.id);
      if (incoming.deleted) enqueue(ctx, v.id, "delete", hlc, current.hlc, null);
      else
        enqueue(ctx, v.id, current.deleted ? "create" : "update", hlc, current.hlc, toMemoryData(incoming));
    }
    ctx.clock.receive(hlc);
    return current ? "updated" : "created";
  }

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
    ] as const;
  }

  function insertRow(m: Memory): void {
    q(
      `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                             base_hlc, deleted, origin_device, source, synced_at, last_accessed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 'local', NULL, NULL)`,
    ).run(m.id, ...fields(m), m.deleted ? 1 : 0, ctx.currentDeviceId);
  }

  return {
    *exportMemories(filter: TransferFilter = {}): Generator<LocalMemory> {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (!filter.includeDeleted) where.push("deleted = 0");
      if (filter.kind) {
        where.push("kind = ?");
        args.push(filter.kind);
      }
      for (const tag of filter.tags ?? []) {
        where.push("EXISTS (SELECT 1 FROM json_each(memories.tags) WHERE value = ?)");
        args.push(tag);
      }
      const sql = `SELECT ${MEMORY_COLUMNS} FROM memories ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY rid`;
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
           WHERE source = 'local' AND substr(hlc, 24) = ?
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

    importMemories(versions: Memory[]): ImportCounts {
      return write(() => {
        ctx.syncClock();
        const counts: ImportCounts = { created: 0, updated: 0, unchanged: 0, older: 0 };
        for (const v of versions) counts[importOne(v)]++;
        ctx.putMeta(META.hlc, ctx.clock.current());
        return counts;
      });
    },
  };
}
