/** The size of the SQLite edge store on disk, and the eviction of cached VPS memories. */
import { sqliteFileBytes } from "../../../platform/file-size.ts";
import type { Eviction } from "../types.ts";
import type { SqliteContext } from "./context.ts";

export function sqliteEviction(ctx: SqliteContext): Eviction {
  const { q, guard, write } = ctx;

  const sizeBytes = (): number => sqliteFileBytes(ctx.path);

  /** Checkpoints the WAL into the main file and gives free pages back to the file system. */
  function compact(): void {
    guard(() => {
      ctx.db.query("PRAGMA wal_checkpoint(TRUNCATE)").all();
      ctx.db.query("PRAGMA incremental_vacuum").all();
      ctx.db.query("PRAGMA wal_checkpoint(TRUNCATE)").all();
    });
  }

  function evict(limitBytes: number): number {
    if (sizeBytes() <= limitBytes) return 0;
    compact();
    let evicted = 0;
    for (let round = 0; round < 50 && sizeBytes() > limitBytes; round++) {
      const excess = sizeBytes() - limitBytes;
      const candidates = guard(
        () =>
          q(
            `SELECT rid, length(CAST(content AS BLOB)) + length(tags) + length(metadata)
                      + coalesce(length(embedding), 0) AS bytes
             FROM memories AS m
             WHERE origin = 'vps' AND NOT EXISTS
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
      write(() => {
        const del = q("DELETE FROM memories WHERE rid = ?");
        for (const rid of picked) del.run(rid);
      });
      // Deleting from FTS5 only appends delete markers; merging the segments frees the pages.
      guard(() => ctx.db.run("INSERT INTO memories_fts (memories_fts) VALUES ('optimize')"));
      compact();
      evicted += picked.length;
    }
    return evicted;
  }

  return { sizeBytes, evict };
}
