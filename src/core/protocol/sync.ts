/**
 * The sync protocol (push, pull, identity; docs/architecture.md "The sync protocol", docs/vps.md
 * "Sync API"). The VPS validates requests with these schemas and the edge parses responses with
 * them, so the two sides cannot drift apart.
 */
import { z } from "zod";
import { HlcStamp, Memory, MemoryKind, MemorySource, Metadata, Scope, Tags, Timestamp } from "../memory.ts";

/**
 * The version of the sync protocol these schemas define. The VPS reports it in `GET /health`
 * (`protocol_version`) and `dionysus --version --json` prints the binary's. Raise it when a
 * change to these schemas would break the other side (an older edge or VPS); additions that an
 * older side ignores keep it.
 *
 * 2: memories carry `scope`, `source` and `occurred_at`. A VPS of protocol 2 still accepts pushes
 * of protocol 1 (without them: no scope, source `unknown`, no occurred_at).
 */
export const PROTOCOL_VERSION = 2;

/** The full state of a memory written by a create or update. Whole-record last-write-wins. */
export const MemoryData = z.object({
  content: z.string(),
  kind: MemoryKind,
  tags: Tags,
  metadata: Metadata,
  created_at: Timestamp,
  updated_at: Timestamp,
  scope: Scope.nullable().default(null),
  source: MemorySource.default("unknown"),
  occurred_at: Timestamp.nullable().default(null),
});
export type MemoryData = z.infer<typeof MemoryData>;

const BaseHlc = HlcStamp.nullable().optional();

/**
 * One queued local write. `mutation_id` is the device's gapless counter (1, 2, 3, ...): the VPS
 * records the last one applied per device in the same transaction as the write, and answers any
 * `mutation_id <= last` as `duplicate` without applying it again.
 *
 * `base_hlc` is the stamp of the version this write replaced on the writing device (null for a
 * create). It tells a conflict from a plain sequence of edits: when the version a write is about
 * to overwrite is not its base, the two writes were concurrent and the loser goes to the
 * conflict log. Last-write-wins itself looks only at `hlc`.
 */
export const Mutation = z.discriminatedUnion("op", [
  z.object({
    mutation_id: z.number().int().positive(),
    op: z.enum(["create", "update"]),
    id: z.uuid(),
    hlc: HlcStamp,
    base_hlc: BaseHlc,
    data: MemoryData,
  }),
  z.object({
    mutation_id: z.number().int().positive(),
    op: z.literal("delete"),
    id: z.uuid(),
    hlc: HlcStamp,
    base_hlc: BaseHlc,
  }),
]);
export type Mutation = z.infer<typeof Mutation>;

/** Most mutations in one push, and the largest push body. Larger gets 413. */
export const MAX_PUSH_MUTATIONS = 1000;
export const MAX_PUSH_BYTES = 5 * 1024 * 1024;

/**
 * `POST /v1/sync/push` body. Mutations are validated one by one (a malformed one is rejected
 * with its reason while the valid ones apply), so the envelope only checks the array.
 */
export const PushRequest = z.object({
  mutations: z.array(z.unknown()).min(1).max(MAX_PUSH_MUTATIONS),
});
export type PushRequest = z.infer<typeof PushRequest>;

/**
 * Per-mutation outcome, index-aligned with the request:
 * - `applied`: written, and now the current version;
 * - `stale`: accepted, but an equal or newer version already existed (last-write-wins lost;
 *   the losing version is in the conflict log);
 * - `duplicate`: this very mutation (same id and the same content, compared by digest) was
 *   applied before; nothing changed;
 * - `rejected`: not applied. `retryable: false` means never (mark the item `failed`);
 *   `retryable: true` means fix and send again: `clock_skew` (re-stamp), `hlc_node` (the stamp's
 *   node is not this device: re-stamp), `device_diverged` (the VPS holds a different history for
 *   this device and mutation number: the data dir was restored, rolled back or copied; take a
 *   new device identity and send the writes under it). The VPS stops at the first retryable
 *   rejection and leaves the rest of the batch unanswered.
 *
 * A `stale` answer carries `current`, the version that won, so the writing device can show it at
 * once (its feed cursor may already be past the winner).
 */
export const PushResult = z.object({
  index: z.number().int().nonnegative(),
  mutation_id: z.number().int().nullable(),
  status: z.enum(["applied", "stale", "duplicate", "rejected"]),
  code: z.string().optional(),
  reason: z.string().optional(),
  retryable: z.boolean().optional(),
  current: Memory.optional(),
});
export type PushResult = z.infer<typeof PushResult>;

export const PushResponse = z.object({
  results: z.array(PushResult),
  /** The highest mutation_id the VPS has applied for this device. */
  last_mutation_id: z.number().int().nonnegative(),
  /** The VPS clock (ms), so a device can measure and correct its own clock's offset. */
  server_time: z.number(),
});
export type PushResponse = z.infer<typeof PushResponse>;

/** `GET /v1/sync/pull?since=&limit=` query. No `since` means from the beginning. */
export const PullQuery = z.object({
  since: z.string().max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(500),
});
export type PullQuery = z.infer<typeof PullQuery>;

/** `GET /v1/conflicts?memory_id=&limit=` query. */
export const ConflictsQuery = z.object({
  memory_id: z.uuid("memory_id must be a memory id").optional(),
  limit: z.coerce
    .number("limit must be 1..1000")
    .int("limit must be 1..1000")
    .min(1, "limit must be 1..1000")
    .max(1000, "limit must be 1..1000")
    .default(100),
});
export type ConflictsQuery = z.infer<typeof ConflictsQuery>;

/** One entry of the change feed: the current version of a memory (tombstones included), with
 * the `base_hlc` its writer had seen (see `Mutation`). */
export const Change = Memory.extend({ seq: z.number().int().positive(), base_hlc: BaseHlc });
export type Change = z.infer<typeof Change>;

/** Stored-version entry of a conflict log (edge and VPS): the version that lost. */
export const ConflictEntry = z.object({
  memory_id: z.uuid(),
  winner_hlc: HlcStamp,
  loser_hlc: HlcStamp,
  loser: Memory.nullable(),
  resolved_at: Timestamp,
});
export type ConflictEntry = z.infer<typeof ConflictEntry>;

/**
 * Pull answer. `ok` carries a page of changes in commit order and the cursor to continue from;
 * keep pulling until `up_to_date`. `refetch` means the cursor can no longer be served (the server
 * was restored or reset, or the cursor is from elsewhere): drop the cursor and pull from scratch.
 */
export const PullResponse = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("ok"),
    changes: z.array(Change),
    /** Entries of the user's VPS conflict log that are new since the cursor, so every device's
     * conflict log ends up with every loser, whichever device noticed the conflict. */
    conflicts: z.array(ConflictEntry).default([]),
    cursor: z.string(),
    up_to_date: z.boolean(),
    server_time: z.number(),
  }),
  z.object({
    status: z.literal("refetch"),
    reason: z.string(),
    server_time: z.number(),
  }),
]);
export type PullResponse = z.infer<typeof PullResponse>;

/** Cursor: `<epoch>.<seq>[.<conflict id>]`. Opaque to the edge; only the VPS reads it. */
export function encodeCursor(epoch: string, seq: number, conflictId = 0): string {
  return conflictId > 0 ? `${epoch}.${seq}.${conflictId}` : `${epoch}.${seq}`;
}
export function decodeCursor(cursor: string): { epoch: string; seq: number; conflictId: number } | undefined {
  const m = /^([A-Za-z0-9_-]{1,64})\.(\d{1,18})(?:\.(\d{1,18}))?$/.exec(cursor);
  if (!m) return undefined;
  const seq = Number(m[2]);
  const conflictId = m[3] === undefined ? 0 : Number(m[3]);
  return Number.isSafeInteger(seq) && Number.isSafeInteger(conflictId)
    ? { epoch: m[1]!, seq, conflictId }
    : undefined;
}

/** Payload of a `changes` event on `GET /v1/events` (SSE); the event id is `seq`. */
export const ChangesEvent = z.object({ seq: z.number().int().nonnegative(), cursor: z.string() });
export type ChangesEvent = z.infer<typeof ChangesEvent>;

/** Queue status counts, as the edge reports them. */
export const QueueCounts = z.object({
  queued: z.number().int(),
  syncing: z.number().int(),
  synced: z.number().int(),
  failed: z.number().int(),
});
export type QueueCounts = z.infer<typeof QueueCounts>;
