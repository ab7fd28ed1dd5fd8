/** The device's identity and clock in the SQLite edge store, and the small settings kept in its
 * meta table. */
import { statSync } from "node:fs";
import { DionysusError } from "../../../core/errors.ts";
import { HlcClock, isHlc } from "../../../core/hlc.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import type { DeviceClock, Settings } from "../types.ts";
import { META, type SqliteContext } from "./context.ts";
import { restampRows } from "./queue.ts";

/**
 * A copied or restored data dir must not go on as the same device: the VPS would take its new
 * writes, numbered again from an old counter, for resends of writes it already has. The file's
 * inode is recorded in the database; a database that finds itself in another file (a `cp`, a
 * restore from backup, a copy to a new machine) marks itself for a new device identity, which
 * the sync engine takes before its next push. (A VM rolled back in place keeps its inode; the
 * VPS notices that case by the mutation digests: see `device_diverged`.)
 */
export function noticeCopy(ctx: SqliteContext): void {
  let fileId: string;
  try {
    fileId = String(statSync(ctx.path).ino);
  } catch {
    return;
  }
  if (fileId === "0") return; // a file system without inode numbers
  const recorded = ctx.getMeta(META.fileId);
  if (recorded === fileId) return;
  try {
    ctx.write(() => {
      ctx.putMeta(META.fileId, fileId);
      if (recorded === undefined) return;
      ctx.putMeta(
        META.splitPending,
        "the database file was copied or restored (it is not the file this device was using)",
      );
      // The copied sync lease names the original's process, which may well be running.
      ctx.deleteMeta(META.syncLease);
    });
  } catch {
    // Best effort (a full disk, a read-only file): the VPS still refuses a diverged history.
  }
}

export function sqliteDeviceClock(ctx: SqliteContext): DeviceClock {
  const { q, guard, write } = ctx;

  return {
    /** Read from the database each time: another process (`dionysus login --new-device` beside
     * the daemon) may have changed it. Writes use `currentDeviceId`, which `syncClock()` refreshes
     * inside their transaction. */
    get deviceId(): string {
      const stored = guard(() => ctx.readMeta(META.deviceId));
      return stored ?? ctx.currentDeviceId;
    },

    resetDeviceId(newId?: string): string {
      return write(() => {
        const id = newId ?? uuidv7(ctx.now());
        ctx.putMeta(META.deviceId, id);
        ctx.syncClock();
        // Unsent writes carry stamps of the old node; the VPS takes a device's writes only under
        // its own node, so they are stamped again (in order, after everything seen so far).
        const pending = q(
          "SELECT mutation_id FROM sync_queue WHERE status IN ('queued', 'syncing') ORDER BY mutation_id",
        ).all() as { mutation_id: number }[];
        restampRows(
          ctx,
          pending.map((r) => r.mutation_id),
          () => ctx.clock.tick(),
        );
        ctx.putMeta(META.hlc, ctx.clock.current());
        ctx.deleteMeta(META.splitPending);
        return id;
      });
    },

    splitPending(): string | undefined {
      return ctx.getMeta(META.splitPending) || undefined;
    },

    markSplitPending(reason: string): void {
      write(() => ctx.putMeta(META.splitPending, reason));
    },

    observeHlc(stamp: string): void {
      if (!isHlc(stamp)) return;
      write(() => {
        ctx.syncClock();
        ctx.clock.receive(stamp);
        ctx.putMeta(META.hlc, ctx.clock.current());
      });
    },

    setClockOffset(ms: number): void {
      if (!Number.isFinite(ms))
        throw new DionysusError("invalid_input", "clock offset must be a finite number");
      write(() => {
        const corrected = Math.round(ms);
        const movedBack = corrected < ctx.offsetMs;
        ctx.offsetMs = corrected;
        ctx.putMeta(META.clockOffset, String(corrected));
        if (!movedBack) return;
        // The device clock was ahead: stamps issued since are in the future and the VPS refuses
        // them. Restart the clock from the newest stamp the VPS has accepted or sent, so new
        // writes follow corrected time; unsynced writes get fresh stamps through restamp().
        // Never below a stamp this device has seen: the versions the VPS accepted or sent, and the
        // versions that unsent edits replaced (their base, unless that base is itself unsent).
        const row = q(
          `SELECT max(h) AS h FROM (
             SELECT max(hlc) AS h FROM memories WHERE synced_at IS NOT NULL OR origin = 'vps'
             UNION ALL
             SELECT max(q.base_hlc) FROM sync_queue AS q
             WHERE q.status IN ('queued', 'syncing') AND NOT EXISTS
               (SELECT 1 FROM sync_queue AS p WHERE p.hlc = q.base_hlc AND p.status IN ('queued', 'syncing')))`,
        ).get() as { h: string | null };
        ctx.clock = new HlcClock(ctx.currentDeviceId, ctx.clockNow, row.h ?? undefined);
        ctx.putMeta(META.hlc, ctx.clock.current());
      });
    },
  };
}

export function sqliteSettings(ctx: SqliteContext): Settings {
  return {
    getMeta: (key) => ctx.getMeta(key),
    setMeta: (key, value) => ctx.write(() => ctx.putMeta(key, value)),
  };
}
