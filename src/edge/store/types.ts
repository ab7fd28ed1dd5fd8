/**
 * The edge store port: everything the edge agent (HTTP API, CLI, sync engine) asks of local
 * storage, composed of smaller parts (`MemoryStore`, `SyncQueue`, `FeedSink`, `DeviceClock`,
 * `Settings`, `Eviction`) that a caller needing only one may type against. The one adapter is
 * `store/sqlite/` on bun:sqlite; the contract suite in `tests/contract/edge-store.contract.ts`
 * runs against it.
 *
 * Invariants:
 * - Every local write (create, update, delete) changes the memory and appends to the sync queue in
 *   one transaction, with the next gapless `mutation_id` of this device.
 * - A queued item is never dropped; `failed` items stay visible with their reason.
 * - A page of remote changes and its cursor are stored in one transaction.
 */
import type { MemoryFilter } from "../../core/filter.ts";
import type { LocalMemory, Memory, MemoryPatch, MemorySource, NewMemoryInput } from "../../core/memory.ts";
import type { RecallHit } from "../../core/protocol/edge-api.ts";
import type { TimeRecall } from "../../core/time-query.ts";

/** How the device can recall on its own. */
export type LocalRecallMode = "keyword" | "semantic" | "hybrid";

import type { Change, ConflictEntry, Mutation, PushResult, QueueCounts } from "../../core/protocol/sync.ts";

export type QueueStatus = "queued" | "syncing" | "synced" | "failed";

/** A row of the sync queue, as `dionysus sync status --json` can show it. */
export interface QueueItem {
  mutation_id: number;
  memory_id: string;
  op: "create" | "update" | "delete";
  status: QueueStatus;
  retry_count: number;
  next_attempt_at: string | null;
  last_error: string | null;
  created_at: string;
}

export interface ApplyChangesResult {
  /** Remote versions written locally. */
  applied: number;
  /** Remote versions that lost to a newer local version (kept in the conflict log). */
  skipped: number;
  /** Local versions overwritten by a newer remote version (kept in the conflict log). */
  conflicts: number;
}

/** This device's identity and its hybrid logical clock. */
export interface DeviceClock {
  /** This device's id (UUIDv7 made on first open, kept in the database). */
  readonly deviceId: string;
  /** Gives this device a new id (`newId`, or a fresh UUIDv7): after the VPS revoked the old one,
   * or when this data dir turned out to be a copy. Memories and queued writes stay; unsent writes
   * are stamped again under the new node. Clears a pending split. Other handles on the database
   * pick the new id up at their next write. */
  resetDeviceId(newId?: string): string;
  /** Why this data dir must take a new device identity before its next push (it was copied or
   * restored, or the VPS holds a different history for it), or undefined. */
  splitPending(): string | undefined;
  markSplitPending(reason: string): void;
  /** Merges a remote HLC into the local clock (after every push and pull). */
  observeHlc(stamp: string): void;
  /** Sets the estimated offset of this device's clock from the VPS's (ms, added to Date.now()). */
  setClockOffset(ms: number): void;
}

/** Who writes, for in-process callers (the edge HTTP app, the CLI's direct client, the MCP
 * server): Dionysus sets a memory's `source`, never the request body. */
export interface WriteOptions {
  /** Which client writes: `cli`, `api`, `mcp:<client>` (see `mcpSource`), `import`. Default `unknown`. */
  source?: MemorySource;
}

/** The user's memories: local reads and writes (each write of a shared memory also queues it for
 * the VPS; a private memory's writes are never queued and take no mutation number). */
export interface MemoryStore {
  /** `input.private`: kept on this device only. `options.source` is recorded as the memory's
   * `source` (kept by later updates: it names the client that created the memory). */
  create(input: NewMemoryInput, options?: WriteOptions): LocalMemory;
  /** Reads a live memory and records the access (for LRU eviction). Tombstones read as not found. */
  get(id: string): LocalMemory | undefined;
  /** Throws DionysusError `not_found` for unknown or deleted ids. `patch.private: true` on a shared
   * memory queues a delete for the VPS and keeps the local copy; `false` on a private one queues
   * it like a new write. */
  update(id: string, patch: MemoryPatch): LocalMemory;
  /** Tombstones the memory and queues the delete. Throws `not_found` for unknown or deleted ids. */
  delete(id: string): void;
  /** Live memories, newest `updated_at` first, narrowed by `filter` inside the query (relative
   * times are taken against the store's clock). */
  recent(limit: number, filter?: MemoryFilter): LocalMemory[];
  /** Recall on the device. `keyword` (the default): FTS5 bm25; user text is sanitised, never raw
   * MATCH syntax. `semantic`: the built-in embedder's vectors (store/sqlite/vectors.ts).
   * `hybrid`: both, fused as on the VPS (core/fusion.ts). `filter` narrows inside the query, so
   * a filtered recall still fills its page. */
  recall(
    query: string,
    limit: number,
    filter?: MemoryFilter,
    mode?: LocalRecallMode,
    /** The time the query names and how to use it (core/time-query.ts): `boost` ranks the
     * memories of that time (occurred_at, else created_at) higher, unless none is in the window,
     * then the ranking is the one without it; `filter` keeps only them. */
    time?: TimeRecall,
  ): RecallHit[];
  /** Counts of live memories. */
  countMemories(): number;
  /** Gives vectors to live memories that have none for the built-in embedder, for about `maxMs`
   * (the daemon calls it while idle, so that the first semantic recall after an import does not
   * embed every memory). `done` when none is left. */
  embedPending(maxMs: number): { embedded: number; done: boolean };
}

/** The push side: local writes waiting for the VPS, claimed in batches and settled by its answers. */
export interface SyncQueue {
  queueCounts(): QueueCounts;
  /** Items by status, oldest first. */
  queueItems(status: QueueStatus, limit: number): QueueItem[];

  /** On start: rows left `syncing` by a crash go back to `queued`. Returns how many. */
  requeueSyncing(): number;
  /**
   * Marks up to `limit` due `queued` items (next_attempt_at null or <= now) `syncing`, in
   * mutation_id order, and returns them as protocol mutations carrying the memory's state as it
   * was written by that mutation.
   */
  claimBatch(limit: number, now?: number): Mutation[];
  /**
   * Records the VPS's per-mutation answers: applied/stale/duplicate → `synced` (and the memory's
   * `synced_at`; a `stale` answer's `current`, the version that won, is applied like a pulled one);
   * rejected and not retryable → `failed` with the reason; rejected and retryable → `queued` again.
   * Items of the batch without an answer go back to `queued`.
   */
  settle(results: PushResult[]): void;
  /** A transient failure (network, 5xx, 429): the claimed items go back to `queued`, retry_count+1,
   * next_attempt_at = `nextAttemptAt`, last_error = `error`. */
  release(mutationIds: number[], error: string, nextAttemptAt: number): void;
  /** Re-stamps queued mutations (and their memories' hlc) with fresh stamps, in mutation order,
   * after the VPS refused a stamp (clock skew, or a node not this device's). The stamps come from
   * the store's own clock unless `stamp` is given; that clock has seen every stamp this device
   * wrote or received, so a write is never stamped below the version it replaced. */
  restamp(mutationIds: number[], stamp?: () => string): void;
}

/** The pull side: remote versions from the VPS's change feed, and the conflict log. */
export interface FeedSink {
  /** The stored pull cursor, or undefined before the first pull. */
  cursor(): string | undefined;
  /** A token that changes whenever what the VPS knows of this device's memories may have changed:
   * a local write queued for sync, or a pull that moved the cursor. Keys the cache of VPS
   * answers, so that an answer is not reused across such a change. */
  dataVersion(): string;
  /**
   * Applies a page of remote changes with last-write-wins by HLC and stores `cursor`, in one
   * transaction. Remote rows get `origin = 'vps'`; a private local row is never overwritten; overwritten versions go to the conflict log.
   * A local row with queued (unsynced) writes keeps them queued. `conflicts` are entries of the
   * VPS's conflict log (found by another device or the VPS); they join the local log, once each.
   */
  applyChanges(changes: Change[], cursor: string, conflicts?: ConflictEntry[]): ApplyChangesResult;
  /** Applies the identity baseline (`GET /v1/identity`) with last-write-wins, leaving the pull
   * cursor alone (the full pull that follows still starts where it was). Returns rows written. */
  applyIdentity(memories: Memory[]): number;
  /** "Refetch from scratch": forgets the cursor and cached VPS rows, keeps unsynced local writes. */
  resetCache(): void;
  /** The local conflict log, newest first. */
  conflicts(limit: number): ConflictEntry[];
}

/** Small key/value settings kept in the database (sync state, last success, ...). */
export interface Settings {
  getMeta(key: string): string | undefined;
  setMeta(key: string, value: string): void;
}

/** The database's size on disk and the eviction of cached VPS memories. */
export interface Eviction {
  /** Size of the database file in bytes (main file plus WAL). */
  sizeBytes(): number;
  /** Evicts least-recently-used cached VPS memories until the database is under `limitBytes`;
   * never evicts memories with unsynced local writes. Returns how many were evicted. */
  evict(limitBytes: number): number;
}

/** The keyword index's shape: FTS5 keeps it as segments (b-trees); every write adds a small one
 * and a recall reads every segment, so fewer segments make recall faster. */
export interface IndexStats {
  /** Segments of the keyword index. */
  segments: number;
  /** Whether `mergeIndex` has work to do: more segments than its policy keeps, or a merge it
   * started and has not finished. */
  mergeWanted: boolean;
  /** Changes whenever the index changes (a write, a merge): tells an idle index from a written one. */
  version: string;
}

export interface IndexMergeOptions {
  /** Starts no new slice once this much time (ms) has passed; at least one slice runs. Default:
   * until the index is merged. */
  maxMs?: number;
  /** Merge into one segment even when the index has few segments (after an import). */
  force?: boolean;
}

/** What one `mergeIndex` call did. */
export interface IndexMergeResult {
  /** Slices run (each its own short write transaction). */
  slices: number;
  /** Leaf pages the slices that merged were given to write (an upper bound). */
  pages: number;
  /** Whether the merge is finished (nothing left until the next writes). */
  done: boolean;
  /** Segments before and after. */
  segmentsBefore: number;
  segments: number;
  /** Wall time of the call and of its longest slice (ms). */
  ms: number;
  maxSliceMs: number;
}

/** Upkeep of the keyword index: merging its segments in small slices while the daemon is idle
 * (see edge/index-merger.ts), never on the request path. */
export interface IndexUpkeep {
  indexStats(): IndexStats;
  /** Merges the keyword index's segments into one, in slices of 16 pages (a few ms each at
   * 100,000 memories), each its own transaction so that writes and recalls wait at most one slice.
   * Does nothing unless `indexStats().mergeWanted` or `force`. */
  mergeIndex(opts?: IndexMergeOptions): IndexMergeResult;
}

export interface RetryResult {
  /** Failed items queued again: their old and new mutation numbers. */
  retried: { from: number; to: number }[];
  /** Failed items a later write of the same memory replaced: dismissed, not sent. */
  superseded: number[];
}

/** Upkeep of the sync queue (see sqlite/upkeep.ts). */
export interface QueueUpkeep {
  /** Deletes `synced` rows last changed before `before` (ms). Returns how many. */
  pruneSynced(before: number): number;
  /** Queues the given failed items (all when none are given) again under new mutation numbers.
   * Throws `not_found` for an id that is not a failed item. */
  retryFailed(ids?: number[]): RetryResult;
  /** Removes a failed item from the queue (the memory stays as it is on this device). */
  dismissFailed(id: number): void;
}

/** Which rows an export reads. */
export interface TransferFilter {
  filter?: MemoryFilter;
  /** Tombstones too (they carry deletes to wherever the export is imported). */
  includeDeleted?: boolean;
}

/** One record of an import: the memory, and whether the export had it private (device-only). */
export interface ImportVersion {
  memory: Memory;
  private: boolean;
}

/** What an import did with each version it was given. */
export interface ImportCounts {
  /** New memories. */
  created: number;
  /** Memories whose stored version was older, replaced. */
  updated: number;
  /** The stored version is this one (same stamp or same state). */
  unchanged: number;
  /** The stored version is newer and was kept. */
  older: number;
}

/** `dionysus export` and `dionysus import` (see sqlite/transfer.ts for the rule). */
export interface Transfer {
  /** Every matching row, oldest first, read in one snapshot. */
  exportMemories(filter?: TransferFilter): Generator<LocalMemory>;
  /** Writes each version that wins by last-write-wins as a local write (queued for the VPS), in
   * one transaction. The versions must be valid memories. */
  importMemories(versions: ImportVersion[]): ImportCounts;
  /** Queues again the current version of every memory this device wrote last (its own stamp, no
   * unsent write), unchanged: after the VPS lost history (a restore, a new epoch) it may lack them.
   * The VPS answers those it has as stale with the same version. Returns how many. */
  resendOwnVersions(): number;
}

export interface EdgeStore
  extends DeviceClock,
    MemoryStore,
    SyncQueue,
    FeedSink,
    Settings,
    Eviction,
    Transfer,
    QueueUpkeep,
    IndexUpkeep {
  close(): void;
}
