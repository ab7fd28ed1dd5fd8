/**
 * The edge store on bun:sqlite: memories with an FTS5 index, the sync queue, the conflict log
 * and small settings, in one WAL-mode file that the daemon and the CLI may open at once.
 *
 * One `SqliteContext` (context.ts: the database, statements, transactions, meta, clock) is shared
 * by the parts, each of which answers one part of the `EdgeStore` port:
 * - memories.ts: `MemoryStore`, local reads and writes and recall;
 * - queue.ts: `SyncQueue`, the push side;
 * - feed.ts: `FeedSink`, the pull side, last-write-wins and the conflict log;
 * - identity.ts: `DeviceClock` and `Settings`, the device id, its clock and the meta table;
 * - eviction.ts: `Eviction`, the size on disk and the eviction of cached VPS memories;
 * - transfer.ts: `Transfer`, export and import;
 * - upkeep.ts: `QueueUpkeep`, pruning synced rows, retrying and dismissing refused writes;
 * - index-merge.ts: `IndexUpkeep`, merging the keyword index's segments in small slices.
 */
import type { EdgeStore } from "../types.ts";
import { SqliteContext, type SqliteStoreOptions } from "./context.ts";
import { sqliteEviction } from "./eviction.ts";
import { sqliteFeed } from "./feed.ts";
import { noticeCopy, sqliteDeviceClock, sqliteSettings } from "./identity.ts";
import { sqliteIndexUpkeep } from "./index-merge.ts";
import { sqliteMemories } from "./memories.ts";
import { sqliteQueue } from "./queue.ts";
import { sqliteTransfer } from "./transfer.ts";
import { sqliteQueueUpkeep } from "./upkeep.ts";

export type { SqliteStoreOptions } from "./context.ts";

/** Opens (or creates) the edge database at `opts.path`. Throws `db_corrupt` / `db_too_new`
 * for a file it must not touch. */
export function createSqliteStore(opts: SqliteStoreOptions): EdgeStore {
  const ctx = new SqliteContext(opts);
  try {
    noticeCopy(ctx);
  } catch (err) {
    ctx.db.close();
    throw err;
  }
  return compose(
    sqliteDeviceClock(ctx),
    sqliteMemories(ctx),
    sqliteQueue(ctx),
    sqliteFeed(ctx),
    sqliteSettings(ctx),
    sqliteEviction(ctx),
    sqliteTransfer(ctx),
    sqliteQueueUpkeep(ctx),
    sqliteIndexUpkeep(ctx),
    {
      close(): void {
        try {
          ctx.db.run("PRAGMA optimize");
        } catch {
          // best effort
        }
        ctx.db.close();
      },
    },
  );
}

type Joined<P extends object[]> = P extends [infer H, ...infer R extends object[]] ? H & Joined<R> : unknown;

/** One object with the members of every part; getters (`deviceId`) stay getters. */
function compose<P extends object[]>(...parts: P): Joined<P> {
  const store = {};
  for (const part of parts) Object.defineProperties(store, Object.getOwnPropertyDescriptors(part));
  return store as Joined<P>;
}
