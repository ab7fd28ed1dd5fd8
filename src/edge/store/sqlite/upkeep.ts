/**
 * Upkeep of the sync queue: synced rows pruned after a while, and the writes the VPS refused for
 * good (`failed` items): `dionysus sync retry` and `dismiss`.
 *
 * A retry never resends a failed item under its old mutation number: the VPS may have applied
 * later numbers since, and it takes a used number with unknown content for another history
 * (`device_diverged`). So the write is queued again under the next number, with the same stamp
 * and payload, and the failed row goes. A failed write that a later write of the same memory has
 * replaced is not sent again (it would only lose): it is dismissed and reported as superseded.
 */
import { DionysusError } from "../../../core/errors.ts";
import type { QueueUpkeep, RetryResult } from "../types.ts";
import { iso, type SqliteContext } from "./context.ts";
import { enqueue } from "./queue.ts";
import type { QueueRow } from "./rows.ts";

/** Synced rows deleted per transaction. */
const PRUNE_CHUNK = 2000;

export function sqliteQueueUpkeep(ctx: SqliteContext): QueueUpkeep {
  const { q, write } = ctx;

  function failedRows(ids: number[] | undefined): QueueRow[] {
    if (!ids || ids.length === 0)
      return q("SELECT * FROM sync_queue WHERE status = 'failed' ORDER BY mutation_id").all() as QueueRow[];
    const find = q("SELECT * FROM sync_queue WHERE mutation_id = ? AND status = 'failed'");
    return [...new Set(ids)]
      .sort((a, b) => a - b)
      .map((id) => {
        const row = find.get(id) as QueueRow | null;
        if (!row)
          throw new DionysusError("not_found", `no failed sync item ${id} (see dionysus sync status)`);
        return row;
      });
  }

  return {
    retryFailed(ids?: number[]): RetryResult {
      return write(() => {
        ctx.syncClock();
        const result: RetryResult = { retried: [], superseded: [] };
        const current = q("SELECT hlc FROM memories WHERE id = ?");
        const drop = q("DELETE FROM sync_queue WHERE mutation_id = ?");
        for (const row of failedRows(ids)) {
          drop.run(row.mutation_id);
          const memory = current.get(row.memory_id) as { hlc: string } | null;
          if (memory?.hlc !== row.hlc) {
            result.superseded.push(row.mutation_id);
            continue;
          }
          const payload = row.payload === null ? null : JSON.parse(row.payload);
          const next = enqueue(ctx, row.memory_id, row.op, row.hlc, row.base_hlc, payload);
          result.retried.push({ from: row.mutation_id, to: next });
        }
        return result;
      });
    },

    pruneSynced(before: number): number {
      // Synced rows hold no payload; they are only history. Mutation numbers stay gapless: the
      // next one comes from the meta table as well as the queue. In chunks, each its own
      // transaction, so that a large backlog never holds the write lock for long.
      const chunk = q(
        `DELETE FROM sync_queue WHERE mutation_id IN
           (SELECT mutation_id FROM sync_queue WHERE status = 'synced' AND updated_at < ? LIMIT ${PRUNE_CHUNK})`,
      );
      let total = 0;
      for (;;) {
        const n = write(() => chunk.run(iso(before)).changes);
        total += n;
        if (n < PRUNE_CHUNK) return total;
      }
    },

    dismissFailed(id: number): void {
      write(() => {
        failedRows([id]);
        q("DELETE FROM sync_queue WHERE mutation_id = ?").run(id);
      });
    },
  };
}
