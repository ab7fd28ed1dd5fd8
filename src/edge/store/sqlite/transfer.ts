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
import type { ImportCounts, ImportVersion, Transfer, TransferFilter } from "../types.ts";
import { iso, META, type SqliteContext } from "./context.ts";
import { filterSql } from "./filter-sql.ts";
import { enqueue } from "./queue.ts";
import { MEMORY_COLUMNS, type MemoryRow, sameState, toLocalMemory, toMemory, toMemoryData } from "./rows.ts";

export function sqliteTransfer(ctx: SqliteContext): Transfer {
  const { q, guard, write } = ctx;

  /** Inside a write transaction: writes one imported version if it wins; says what happened. */
  function importOne({ memory: v, private: wantPrivate }: ImportVersion): keyof ImportCounts {
    const parsed = parseHlc(v.hlc);
    if (!parsed) return "older"; // validated by the caller; never stored
    const own = ctx.currentDeviceId;
    const row = ctx.rowById(v.id);
    const current = row ? toMemory(row) : undefined;
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
    const isPrivate = row ? row.private === 1 : wantPrivate;
    if (!current) {
      insertRow(incoming, isPrivate);
      // A delete of a memory this device never had is kept as a tombstone (it still wins over an
      // older version arriving later) and sent, so the VPS learns it too. Private: never sent.
      if (!isPrivate) enqueue(ctx, v.id, incoming.deleted ? "delete" : "create", hlc, null, dataOf(incoming));
    } else {
      q(
        `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, embedding = ?, created_at = ?,
                             updated_at = ?, hlc = ?, scope = ?, source = ?, occurred_at = ?, base_hlc = ?,
                             deleted = ?, origin_device = ?, origin = 'local', synced_at = NULL
         WHERE id = ?`,
      ).run(...fields(incoming), current.hlc, incoming.deleted ? 1 : 0, own, v.id);
      const op = incoming.deleted ? "delete" : current.deleted ? "create" : "update";
      if (!isPrivate) enqueue(ctx, v.id, op, hlc, current.hlc, dataOf(incoming));
    }
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

  function insertRow(m: Memory, isPrivate: boolean): void {
    q(
      `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                             scope, source, occurred_at, base_hlc, deleted, origin_device, origin, private,
                             synced_at, last_accessed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 'local', ?, NULL, NULL)`,
    ).run(m.id, ...fields(m), m.deleted ? 1 : 0, ctx.currentDeviceId, isPrivate ? 1 : 0);
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
