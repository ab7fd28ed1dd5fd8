/** The sync queue part of the SQLite edge store: local writes waiting for the VPS, claimed in
 * batches in mutation order and settled by its answers. */
import { DionysusError } from "../../../core/errors.ts";
import { isHlc } from "../../../core/hlc.ts";
import type { MemoryData, Mutation, PushResult, QueueCounts } from "../../../core/protocol/sync.ts";
import type { QueueItem, QueueStatus, SyncQueue } from "../types.ts";
import { iso, META, type SqliteContext } from "./context.ts";
import { applyRemote } from "./feed.ts";
import { type QueueRow, toQueueItem } from "./rows.ts";

/** A batch left `syncing` this long is taken to be abandoned by a process that died. */
const SYNC_LEASE_MS = 5 * 60_000;

/** Inside a write transaction: append to the queue with the next gapless mutation id. */
export function enqueue(
  ctx: SqliteContext,
  memoryId: string,
  op: Mutation["op"],
  hlc: string,
  baseHlc: string | null,
  payload: MemoryData | null,
): number {
  const { q } = ctx;
  const row = q(
    `SELECT max(coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${META.lastMutation}'), 0),
                coalesce((SELECT max(mutation_id) FROM sync_queue), 0)) + 1 AS next`,
  ).get() as { next: number };
  const at = iso(ctx.now());
  q(
    `INSERT INTO sync_queue (mutation_id, memory_id, op, hlc, base_hlc, payload, status, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)`,
  ).run(row.next, memoryId, op, hlc, baseHlc, payload === null ? null : JSON.stringify(payload), at, at);
  ctx.putMeta(META.lastMutation, String(row.next));
  return row.next;
}

/** Inside a write transaction: fresh stamps for unsent queue rows, in mutation order. */
export function restampRows(ctx: SqliteContext, mutationIds: number[], stamp: () => string): void {
  const { q } = ctx;
  const find = q("SELECT * FROM sync_queue WHERE mutation_id = ?");
  for (const id of [...mutationIds].sort((a, b) => a - b)) {
    const row = find.get(id) as QueueRow | null;
    if (!row || (row.status !== "queued" && row.status !== "syncing")) continue;
    const next = stamp();
    if (!isHlc(next)) throw new DionysusError("invalid_input", `restamp: not an HLC stamp: ${next}`);
    q("UPDATE sync_queue SET hlc = ?, updated_at = ? WHERE mutation_id = ?").run(next, iso(ctx.now()), id);
    // Later writes of the same memory were based on the old stamp: keep the chain intact.
    q("UPDATE sync_queue SET base_hlc = ? WHERE memory_id = ? AND base_hlc = ?").run(
      next,
      row.memory_id,
      row.hlc,
    );
    q("UPDATE memories SET hlc = ?, origin_device = ? WHERE id = ? AND hlc = ?").run(
      next,
      ctx.currentDeviceId,
      row.memory_id,
      row.hlc,
    );
    q("UPDATE memories SET base_hlc = ? WHERE id = ? AND base_hlc = ?").run(next, row.memory_id, row.hlc);
    ctx.clock.receive(next);
  }
}

export function sqliteQueue(ctx: SqliteContext): SyncQueue {
  const { q, guard, write } = ctx;

  return {
    queueCounts(): QueueCounts {
      return guard(() => {
        const counts: QueueCounts = { queued: 0, syncing: 0, synced: 0, failed: 0 };
        const rows = q("SELECT status, n FROM sync_queue_counts").all() as {
          status: QueueStatus;
          n: number;
        }[];
        for (const r of rows) counts[r.status] = r.n;
        return counts;
      });
    },

    queueItems(status: QueueStatus, limit: number): QueueItem[] {
      return guard(() =>
        (
          q("SELECT * FROM sync_queue WHERE status = ? ORDER BY mutation_id LIMIT ?").all(
            status,
            limit,
          ) as QueueRow[]
        ).map(toQueueItem),
      );
    },

    requeueSyncing(): number {
      return write(
        () =>
          q("UPDATE sync_queue SET status = 'queued', updated_at = ? WHERE status = 'syncing'").run(
            iso(ctx.now()),
          ).changes,
      );
    },

    /**
     * Claims the due prefix of the queue. Mutations reach the VPS strictly in mutation_id order
     * (it answers any id at or below the last one it applied as `duplicate`), so a batch never
     * skips over a queued item that is still backing off, and nothing new is claimed while
     * another batch is in flight (in this or another process); a batch left `syncing` longer
     * than the lease is taken back.
     */
    claimBatch(limit: number, now: number = ctx.now()): Mutation[] {
      return write(() => {
        q("UPDATE sync_queue SET status = 'queued' WHERE status = 'syncing' AND updated_at < ?").run(
          iso(ctx.now() - SYNC_LEASE_MS),
        );
        if (q("SELECT 1 FROM sync_queue WHERE status = 'syncing' LIMIT 1").get() !== null) return [];
        const rows = q("SELECT * FROM sync_queue WHERE status = 'queued' ORDER BY mutation_id LIMIT ?").all(
          limit,
        ) as QueueRow[];
        const at = iso(ctx.now());
        const claim = q("UPDATE sync_queue SET status = 'syncing', updated_at = ? WHERE mutation_id = ?");
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
    },

    settle(results: PushResult[]): void {
      write(() => {
        const at = iso(ctx.now());
        const find = q("SELECT * FROM sync_queue WHERE mutation_id = ?");
        for (const r of results) {
          if (r.mutation_id === null) continue;
          const row = find.get(r.mutation_id) as QueueRow | null;
          if (!row || row.status === "synced") continue;
          if (r.status === "stale" && r.current) {
            // The VPS kept a newer version: show it now (the feed cursor may be past it already).
            ctx.syncClock();
            applyRemote(ctx, r.current, at, { applied: 0, skipped: 0, conflicts: 0 });
          }
          if (r.status === "applied" || r.status === "stale" || r.status === "duplicate") {
            q(
              // The payload is only needed until the VPS has the write; dropping it keeps the
              // database from holding every memory twice.
              `UPDATE sync_queue SET status = 'synced', payload = NULL, last_error = NULL, next_attempt_at = NULL,
                                     updated_at = ?
               WHERE mutation_id = ?`,
            ).run(at, row.mutation_id);
            // synced_at says the memory's current version is on the VPS.
            q("UPDATE memories SET synced_at = ? WHERE id = ? AND hlc = ?").run(at, row.memory_id, row.hlc);
          } else {
            const reason = [r.code, r.reason].filter(Boolean).join(": ") || "rejected by the VPS";
            q(
              `UPDATE sync_queue SET status = ?, last_error = ?, retry_count = retry_count + 1, updated_at = ?
               WHERE mutation_id = ?`,
            ).run(r.retryable ? "queued" : "failed", reason, at, row.mutation_id);
          }
        }
        q("UPDATE sync_queue SET status = 'queued', updated_at = ? WHERE status = 'syncing'").run(at);
        ctx.putMeta(META.hlc, ctx.clock.current());
      });
    },

    release(mutationIds: number[], error: string, nextAttemptAt: number): void {
      write(() => {
        const stmt = q(
          `UPDATE sync_queue SET status = 'queued', retry_count = retry_count + 1, next_attempt_at = ?,
                                 last_error = ?, updated_at = ?
           WHERE mutation_id = ? AND status IN ('syncing', 'queued')`,
        );
        const at = iso(ctx.now());
        for (const id of mutationIds) stmt.run(Math.floor(nextAttemptAt), error, at, id);
      });
    },

    restamp(mutationIds: number[], stamp?: () => string): void {
      write(() => {
        ctx.syncClock();
        // The store's own clock by default: it has seen every stamp this device wrote or received,
        // so a new stamp is never below the version a write replaced (its base_hlc).
        restampRows(ctx, mutationIds, stamp ?? (() => ctx.clock.tick()));
        ctx.putMeta(META.hlc, ctx.clock.current());
      });
    },
  };
}
