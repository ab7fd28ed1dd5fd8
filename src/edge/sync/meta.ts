/** The sync engine's keys in the store's meta table (the store's own keys are its `META`). */
export const SYNC_META = {
  /** ISO time of the last cycle that succeeded. */
  lastSuccessAt: "sync_last_success_at",
  /** ISO time of the last cycle started. */
  lastAttemptAt: "sync_last_attempt_at",
  /** Why the last cycle failed; empty after a success. */
  lastError: "sync_last_error",
  /** The `seq` of the last realtime event seen, sent back as `Last-Event-ID`. */
  eventsLastId: "events_last_id",
  /** `<pid>-<random>|<until ms>`: the engine allowed to push (see ./lease.ts). */
  lease: "sync_lease",
  /** The device id a split in progress is taking (see ./identity.ts). */
  splitTarget: "identity_split_target",
  /** The VPS clock's offset from this device's, in ms (written by the store's setClockOffset). */
  clockOffset: "clock_offset_ms",
} as const;
