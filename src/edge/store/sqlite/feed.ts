/** The pull side of the SQLite edge store: remote versions from the VPS's change feed (and the
 * identity baseline) applied by last-write-wins, the pull cursor, and the conflict log. */
import { resolve } from "../../../core/conflict.ts";
import type { Memory } from "../../../core/memory.ts";
import type { Change, ConflictEntry } from "../../../core/protocol/sync.ts";
import type { ApplyChangesResult, FeedSink } from "../types.ts";
import { iso, META, type SqliteContext } from "./context.ts";
import { sameState, toMemory } from "./rows.ts";

/** Inside a write transaction: adds an entry to the conflict log (once: an entry already there
 * is left alone). */
function recordConflict(ctx: SqliteContext, c: ConflictEntry): void {
  ctx
    .q(
      `INSERT OR IGNORE INTO conflicts (memory_id, winner_hlc, loser_hlc, loser, resolved_at)
       VALUES (?, ?, ?, ?, ?)`,
    )
    .run(c.memory_id, c.winner_hlc, c.loser_hlc, c.loser ? JSON.stringify(c.loser) : null, c.resolved_at);
}

/** Inside a write transaction: logs `loser`, which lost to the version stamped `winnerHlc`. */
function logConflict(ctx: SqliteContext, memoryId: string, winnerHlc: string, loser: Memory): void {
  recordConflict(ctx, {
    memory_id: memoryId,
    winner_hlc: winnerHlc,
    loser_hlc: loser.hlc,
    loser,
    resolved_at: iso(ctx.now()),
  });
}

/**
 * Inside a write transaction: last-write-wins between a remote version and the local row, by
 * the shared rule in core/conflict.ts. A loser goes to the conflict log only when the two writes
 * were concurrent: the winner's writer had not seen the loser (its `base_hlc` is not the loser's
 * stamp). Only local writes are contested; without a `base_hlc` (older peers), any overwritten
 * local write counts as a conflict.
 */
export function applyRemote(
  ctx: SqliteContext,
  change: Memory & { base_hlc?: string | null },
  at: string,
  result: ApplyChangesResult,
): void {
  const { q } = ctx;
  const { base_hlc, ...rest } = change;
  const remote: Memory = rest.deleted
    ? { ...rest, content: "", tags: [], metadata: {}, embedding: null, occurred_at: null }
    : { ...rest, embedding: rest.embedding ?? null };
  const base = base_hlc ?? null;
  ctx.clock.receive(remote.hlc);
  const row = ctx.rowById(remote.id);
  if (!row) {
    storeRemote(ctx, remote, base, at);
    result.applied++;
    return;
  }
  if (row.private === 1) {
    // A private memory stays as this device has it: no remote version (the echo of the delete
    // sent when it turned private, or another device's concurrent edit) replaces it.
    result.skipped++;
    return;
  }
  const local = toMemory(row);
  const lww = resolve(local, remote, {
    incomingBase: base_hlc,
    contestable: row.origin === "local",
    withoutBase: "conflict",
    currentBase: row.base_hlc,
    ownNode: ctx.currentDeviceId,
    sameState,
  });
  if (lww.winner === "same") {
    // The same version: our own write echoed back, or a page seen before, or the VPS adding
    // the vector of this version (stored, never treated as a content change).
    if (row.synced_at === null) q("UPDATE memories SET synced_at = ? WHERE rid = ?").run(at, row.rid);
    const vector = remote.embedding ? JSON.stringify(remote.embedding) : null;
    if (vector !== null && vector !== row.embedding && row.deleted === 0)
      q("UPDATE memories SET embedding = ? WHERE rid = ?").run(vector, row.rid);
    return;
  }
  if (lww.winner === "current") {
    // The local version is newer. An older version of our own is history, not a conflict.
    if (lww.conflict) logConflict(ctx, remote.id, row.hlc, remote);
    result.skipped++;
    return;
  }
  if (lww.conflict) {
    logConflict(ctx, remote.id, remote.hlc, local);
    result.conflicts++;
  }
  storeRemote(ctx, remote, base, at);
  result.applied++;
}

/** Inside a write transaction: stores a remote version as the memory's current one. */
function storeRemote(ctx: SqliteContext, m: Memory, base: string | null, at: string): void {
  ctx
    .q(
      `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                           base_hlc, deleted, origin_device, origin, scope, source, occurred_at, synced_at,
                           last_accessed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'vps', ?, ?, ?, ?, NULL)
     ON CONFLICT (id) DO UPDATE SET
       content = excluded.content, kind = excluded.kind, tags = excluded.tags,
       metadata = excluded.metadata, embedding = excluded.embedding, created_at = excluded.created_at,
       updated_at = excluded.updated_at, hlc = excluded.hlc, base_hlc = excluded.base_hlc,
       deleted = excluded.deleted, origin_device = excluded.origin_device, origin = 'vps',
       scope = excluded.scope, source = excluded.source, occurred_at = excluded.occurred_at,
       synced_at = excluded.synced_at`,
    )
    .run(
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
      m.scope ?? null,
      m.source ?? "unknown",
      m.occurred_at ?? null,
      at,
    );
}

export function sqliteFeed(ctx: SqliteContext): FeedSink {
  const { q, guard, write } = ctx;

  return {
    cursor(): string | undefined {
      return ctx.getMeta(META.cursor);
    },

    dataVersion(): string {
      return `${ctx.getMeta(META.lastMutation) ?? 0}|${ctx.getMeta(META.cursor) ?? ""}`;
    },

    applyChanges(changes: Change[], cursor: string, conflicts: ConflictEntry[] = []): ApplyChangesResult {
      return write(() => {
        ctx.syncClock();
        const result: ApplyChangesResult = { applied: 0, skipped: 0, conflicts: 0 };
        const at = iso(ctx.now());
        for (const { seq: _seq, ...change } of changes) applyRemote(ctx, change, at, result);
        for (const c of conflicts) recordConflict(ctx, c);
        ctx.putMeta(META.cursor, cursor);
        ctx.putMeta(META.hlc, ctx.clock.current());
        return result;
      });
    },

    applyIdentity(memories: Memory[]): number {
      return write(() => {
        ctx.syncClock();
        const result: ApplyChangesResult = { applied: 0, skipped: 0, conflicts: 0 };
        const at = iso(ctx.now());
        for (const m of memories) applyRemote(ctx, m, at, result);
        ctx.putMeta(META.hlc, ctx.clock.current());
        return result.applied;
      });
    },

    resetCache(): void {
      write(() => {
        q(
          `DELETE FROM memories WHERE origin = 'vps' AND NOT EXISTS
             (SELECT 1 FROM sync_queue AS q WHERE q.memory_id = memories.id AND q.status != 'synced')`,
        ).run();
        ctx.deleteMeta(META.cursor);
      });
    },

    conflicts(limit: number): ConflictEntry[] {
      return guard(() =>
        (
          q("SELECT * FROM conflicts ORDER BY id DESC LIMIT ?").all(limit) as {
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
    },
  };
}
