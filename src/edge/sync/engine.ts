/**
 * The sync engine (the protocol: docs/architecture.md "The sync protocol"). It runs inside
 * `dionysus serve` (and once, in the foreground, for `dionysus sync` when no daemon runs):
 *
 * - a cycle pulls, pushes, then pulls again if it pushed anything;
 * - push: due queue items in mutation order, in batches; per-item answers settle the queue;
 * - pull: pages of the change feed until `up_to_date`, each page stored with its cursor;
 * - what starts a cycle: a local write (at once when no cycle is in flight; writes made while
 *   one is are coalesced into one more cycle after it, so there is no fixed debounce), a realtime
 *   poke from `GET /v1/events` (the same way), a cycle every `intervalMs`, and a retry timer
 *   after failures (10 s, 60 s, 300 s with jitter; Retry-After wins). The event stream is
 *   reconnected with jitter; the periodic pull is the fallback.
 *
 * Beside it: ./session.ts (credentials and tokens), ./lease.ts (one pushing engine per
 * database), ./realtime.ts (the event stream) and ./identity.ts (a copied data dir's own device
 * id). Its meta keys are ./meta.ts's SYNC_META.
 */
import { backoffDelay } from "../../core/backoff.ts";
import { DionysusError, isDionysusError, messageOf, retryAfterOf } from "../../core/errors.ts";
import { MAX_PUSH_MUTATIONS, type Mutation } from "../../core/protocol/sync.ts";
import { jsonBytes } from "../../core/validate.ts";
import type { EdgeStore, QueueItem } from "../store/types.ts";
import { ensureIdentity } from "./identity.ts";
import { SyncLease } from "./lease.ts";
import { SYNC_META } from "./meta.ts";
import { RealtimeLink } from "./realtime.ts";
import { type AuthState, SyncSession } from "./session.ts";
import type { VpsClient } from "./vps-client.ts";

export type { AuthState } from "./session.ts";

export interface SyncProgress {
  phase: "push" | "pull";
  /** push: mutations answered so far; pull: changes received so far. */
  done: number;
  /** push: mutations that were due at the start; pull: unknown (undefined). */
  total: number | undefined;
}

export interface SyncReport {
  pushed: number;
  rejected: number;
  pulled: number;
  conflicts: number;
  refetched: boolean;
  evicted: number;
}

export interface SyncStatus {
  auth: AuthState;
  vps_url: string | null;
  online: boolean;
  realtime: "connected" | "disconnected" | "off";
  last_success_at: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  backoff_ms: number;
  consecutive_failures: number;
  last_error: string | null;
  clock_offset_ms: number;
  /** Writes the VPS refused for good (oldest first, at most 20), each with its reason. They stay
   * on this device and never block the queue. */
  failed_items: QueueItem[];
}

const FAILED_ITEMS_SHOWN = 20;

export interface SyncEngineOptions {
  store: EdgeStore;
  dataDir: string;
  /** Background cycle interval (default 30 s). */
  intervalMs?: number;
  /** Keep a realtime `GET /v1/events` stream open (default true). */
  realtime?: boolean;
  /** The realtime stream is taken as lost after this long without a byte (default 45 s: three
   * of the VPS's 15 s heartbeats). */
  eventsIdleMs?: number;
  /** Database size above which cached VPS memories are evicted (LRU). */
  storageLimitBytes?: number;
  /** Largest push body, in bytes (default 4 MiB, under the VPS's default limit of 5 MiB). A
   * mutation larger than this on its own is marked `failed`; a batch the VPS refuses as too large
   * (413) is split, down to single mutations. */
  maxPushBytes?: number;
  random?: () => number;
  /**
   * Testing knob (1 by default): multiplies the retry backoff steps and the realtime stream's
   * reconnect delays, so that fault tests need not wait out 10 s, 60 s and 30 s. A server's
   * Retry-After is never scaled. `dionysus serve` takes it from DIONYSUS_DEBUG_SYNC_RETRY_SCALE.
   */
  retryScale?: number;
  /** This device's wall clock (ms); the VPS clock's offset is measured against it. Tests skew it. */
  now?: () => number;
  log?: (event: Record<string, unknown>) => void;
}

const PUSH_CLAIM = 500;
const EVENTS_IDLE_MS = 45_000;
const PUSH_MAX_BYTES = 4 * 1024 * 1024;
const PULL_LIMIT = 500;

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export class SyncEngine {
  /** This device's credentials and tokens; the VPS query client borrows them as its TokenSource. */
  readonly session: SyncSession;
  private readonly store: EdgeStore;
  private readonly opts: Required<Omit<SyncEngineOptions, "log" | "storageLimitBytes" | "now">> &
    Pick<SyncEngineOptions, "log" | "storageLimitBytes" | "now">;
  private readonly lease: SyncLease;
  private readonly realtime: RealtimeLink;
  private cycle: Promise<SyncReport> | undefined;
  private again = false;
  private intervalTimer: ReturnType<typeof setInterval> | undefined;
  /** A local write's cycle is about to start (writes in the same turn of the event loop share it). */
  private writeCycleSoon = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private running = false;

  private online = false;
  private failures = 0;
  /** The current backoff is a server's Retry-After (429/503), not a guess. */
  private honouringRetryAfter = false;
  private nextAttemptAt: number | undefined;
  private backoffMs = 0;
  private lastAttemptAt: number | undefined;
  private lastError: string | undefined;
  private clockOffset = 0;

  constructor(options: SyncEngineOptions) {
    this.store = options.store;
    this.opts = {
      intervalMs: 30_000,
      realtime: true,
      eventsIdleMs: EVENTS_IDLE_MS,
      maxPushBytes: PUSH_MAX_BYTES,
      random: Math.random,
      retryScale: 1,
      ...options,
    };
    const offset = Number(this.store.getMeta(SYNC_META.clockOffset) ?? 0);
    this.clockOffset = Number.isFinite(offset) ? offset : 0;
    const log = (event: Record<string, unknown>) => this.log(event);
    this.session = new SyncSession({
      dataDir: this.opts.dataDir,
      ...(this.opts.now ? { now: this.opts.now } : {}),
      // A fresh login: retry at once instead of waiting out an old backoff.
      onCredentials: () => {
        this.nextAttemptAt = undefined;
      },
      log,
    });
    this.lease = new SyncLease(this.store);
    this.realtime = new RealtimeLink({
      store: this.store,
      session: this.session,
      running: () => this.running,
      intervalMs: this.opts.intervalMs,
      idleMs: this.opts.eventsIdleMs,
      random: this.opts.random,
      retryScale: this.opts.retryScale,
      onOpen: () => {
        // Reconnected: the VPS is back. Anything queued meanwhile goes now, not at the next timer.
        if (!this.online || this.failures > 0 || this.store.queueCounts().queued > 0)
          void this.trigger("reconnect");
      },
      onEvent: () => {
        this.online = true;
        void this.trigger("poke");
      },
      log,
    });
  }

  // ---- lifecycle ----

  /** Starts the background loops. Rows left `syncing` by a crash go back to `queued`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.intervalTimer = setInterval(() => void this.trigger("interval"), this.opts.intervalMs);
    void this.trigger("start");
    if (this.opts.realtime) void this.realtime.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.realtime.stop();
    await this.cycle?.catch(() => undefined);
    this.lease.release();
  }

  /**
   * Called after each local write: pushes it right after the current turn of the event loop (the
   * write's own answer goes out first). While a cycle is in flight the write is coalesced: one
   * more cycle runs after it, for every write made meanwhile.
   */
  notifyLocalWrite(): void {
    if (!this.running || this.writeCycleSoon) return;
    this.writeCycleSoon = true;
    setImmediate(() => {
      this.writeCycleSoon = false;
      void this.trigger("local-write");
    });
  }

  /**
   * Runs one full cycle now (push everything queued, then pull until up to date), ignoring the
   * backoff timer. Concurrent calls share one cycle. Throws when the cycle fails.
   */
  syncNow(onProgress?: (p: SyncProgress) => void): Promise<SyncReport> {
    return this.runCycle(onProgress);
  }

  authState(): AuthState {
    return this.session.authState();
  }

  isOnline(): boolean {
    return this.online;
  }

  status(): SyncStatus {
    const auth = this.authState();
    const stored = (k: string) => this.store.getMeta(k) || null;
    return {
      auth,
      vps_url: this.session.vpsUrl(),
      online: this.online,
      realtime:
        !this.opts.realtime || !this.running ? "off" : this.realtime.up ? "connected" : "disconnected",
      last_success_at: stored(SYNC_META.lastSuccessAt),
      last_attempt_at: iso(this.lastAttemptAt) ?? stored(SYNC_META.lastAttemptAt),
      next_attempt_at: iso(this.nextAttemptAt),
      backoff_ms: this.backoffMs,
      consecutive_failures: this.failures,
      last_error: this.lastError ?? stored(SYNC_META.lastError),
      clock_offset_ms: this.clockOffset,
      failed_items: this.store.queueItems("failed", FAILED_ITEMS_SHOWN),
    };
  }

  // ---- the cycle ----

  private trigger(reason: string): Promise<void> {
    if (!this.running) return Promise.resolve();
    // During a backoff only the retry timer runs a cycle, and signs that the VPS is back (a poke,
    // a reconnected stream) unless the VPS itself asked for quiet with Retry-After. A local write
    // or the interval waits: trying at once would fail again and climb the backoff steps.
    const backingOff = this.nextAttemptAt !== undefined && Date.now() < this.nextAttemptAt;
    const vpsIsBack = (reason === "poke" || reason === "reconnect") && !this.honouringRetryAfter;
    if (backingOff && reason !== "retry" && reason !== "start" && !vpsIsBack) return Promise.resolve();
    return this.runCycle().then(
      () => undefined,
      () => undefined,
    );
  }

  private runCycle(onProgress?: (p: SyncProgress) => void): Promise<SyncReport> {
    if (this.cycle) {
      // A cycle is under way; run one more after it so that nothing written meanwhile waits.
      this.again = true;
      return this.cycle;
    }
    this.cycle = this.cycleBody(onProgress).finally(() => {
      this.cycle = undefined;
      if (this.again && this.running) {
        this.again = false;
        void this.trigger("again");
      }
    });
    return this.cycle;
  }

  private async cycleBody(onProgress?: (p: SyncProgress) => void): Promise<SyncReport> {
    const report = emptyReport();
    const auth = this.authState();
    if (auth === "none") throw new DionysusError("unauthorized", "not logged in: run dionysus login URL");
    if (auth === "reauth_required") {
      throw new DionysusError("unauthorized", "re-authentication needed: run dionysus login");
    }
    if (!this.lease.acquire()) {
      throw new DionysusError("busy", "another dionysus process is syncing this data dir");
    }
    this.lastAttemptAt = Date.now();
    this.store.setMeta(SYNC_META.lastAttemptAt, new Date(this.lastAttemptAt).toISOString());
    try {
      // Pull first: a device then sees concurrent remote versions before its own writes
      // overwrite them on the VPS, so both sides log the same conflict. Pull again after a push
      // so the cursor moves past our own writes and anything that landed meanwhile.
      await this.pullAll(report, onProgress);
      await this.pushAll(report, onProgress);
      if (report.pushed > 0) await this.pullAll(report, onProgress);
      if (this.opts.storageLimitBytes && this.store.sizeBytes() > this.opts.storageLimitBytes) {
        report.evicted = this.store.evict(this.opts.storageLimitBytes);
      }
      this.succeeded();
      this.log({ event: "sync_cycle", ...report });
      return report;
    } catch (err) {
      this.failed(err);
      throw err;
    } finally {
      if (this.running) this.lease.renew();
      else this.lease.release();
    }
  }

  private async pushAll(report: SyncReport, onProgress?: (p: SyncProgress) => void): Promise<void> {
    await this.ensureIdentity();
    const total = this.store.queueCounts().queued;
    let skewRounds = 0;
    let splits = 0;
    for (;;) {
      // The engine decides when to try (its backoff gates the timers); once a cycle runs, every
      // queued item goes, including those a failed push marked with a later next_attempt_at:
      // `dionysus sync` must not leave them behind, nor a retry that fired a moment earlier.
      const claimed = this.store.claimBatch(PUSH_CLAIM, Number.MAX_SAFE_INTEGER);
      if (claimed.length === 0) return;
      const pending = new Set(claimed.map((m) => m.mutation_id));
      let restamped = false;
      const chunks = measuredChunks(claimed, this.opts.maxPushBytes);
      while (chunks.length > 0) {
        const { mutations: chunk, bytes } = chunks.shift()!;
        const alone = chunk.length === 1 ? chunk[0]! : undefined;
        if (alone && bytes > this.opts.maxPushBytes) {
          this.refuseLocally(
            alone,
            Number.isFinite(bytes)
              ? `too large to push: ${bytes} bytes JSON-encoded; the limit is ${this.opts.maxPushBytes}`
              : "cannot be encoded as JSON (nested too deep)",
          );
          pending.delete(alone.mutation_id);
          report.rejected++;
          continue;
        }
        let answer: Awaited<ReturnType<VpsClient["push"]>>;
        try {
          answer = await this.client().push(this.session, chunk);
        } catch (err) {
          if (isDionysusError(err) && err.code === "payload_too_large") {
            // The VPS's limits are lower than ours (or it measures differently). Halve the batch;
            // a mutation refused alone can never be sent: it fails for good, the rest go on.
            if (alone) {
              this.refuseLocally(alone, `the VPS refused it as too large (${err.message})`);
              pending.delete(alone.mutation_id);
              report.rejected++;
            } else {
              const half = Math.ceil(chunk.length / 2);
              chunks.unshift(...[chunk.slice(0, half), chunk.slice(half)].map(measured));
            }
            continue;
          }
          // Everything claimed and not yet answered goes back to the queue, with backoff.
          this.store.release(
            [...pending],
            messageOf(err),
            Date.now() + this.delayFor(err, this.failures + 1),
          );
          throw err;
        }
        this.learnOffset(answer.offsetMs);
        this.store.settle(answer.body.results);
        for (const r of answer.body.results) {
          if (r.mutation_id !== null) pending.delete(r.mutation_id);
          if (r.status === "rejected" && !r.retryable) report.rejected++;
          else if (r.status !== "rejected") report.pushed++;
        }
        onProgress?.({ phase: "push", done: report.pushed + report.rejected, total });
        const diverged = answer.body.results.find((r) => r.code === "device_diverged");
        if (diverged) {
          // The VPS holds other writes under our numbers: this data dir is a restored or copied
          // one. Take a device identity of our own and send everything still queued under it.
          this.store.release([...pending], "taking a new device identity", Date.now());
          if (++splits > 2)
            throw new DionysusError(
              "unavailable",
              `the VPS keeps answering device_diverged: ${diverged.reason}`,
            );
          this.store.markSplitPending(diverged.reason ?? "the VPS holds a different history");
          await this.ensureIdentity();
          restamped = true;
          break;
        }
        if (answer.body.results.length < chunk.length || answer.body.results.some((r) => r.retryable)) {
          // The VPS stopped at a stamp it cannot take: too far ahead of its clock (ours is wrong;
          // the offset was just measured) or not of this device's node. Re-stamp everything still
          // queued, in order, from the store's clock, and push again.
          if (++skewRounds > 3) {
            this.store.release(
              [...pending],
              "the VPS keeps refusing our clock",
              Date.now() + this.delayFor(undefined, this.failures + 1),
            );
            throw new DionysusError(
              "unavailable",
              "the VPS keeps refusing this device's clock; will retry later",
            );
          }
          this.store.release([...pending], "re-stamped after clock correction", Date.now());
          this.store.restamp(
            this.store.queueItems("queued", Number.MAX_SAFE_INTEGER).map((q) => q.mutation_id),
          );
          restamped = true;
          break;
        }
      }
      if (!restamped && pending.size > 0)
        this.store.release([...pending], "no answer from the VPS", Date.now());
    }
  }

  /** Makes sure this data dir pushes as a device of its own (see ./identity.ts). */
  private ensureIdentity(): Promise<void> {
    return ensureIdentity(this.store, this.session, (event) => this.log(event));
  }

  /** Marks a mutation that can never be pushed `failed`, with the reason (`dionysus sync status`). */
  private refuseLocally(m: Mutation, reason: string): void {
    this.store.settle([
      {
        index: 0,
        mutation_id: m.mutation_id,
        status: "rejected",
        code: "payload_too_large",
        reason,
        retryable: false,
      },
    ]);
    this.log({ event: "sync_refused_locally", mutation_id: m.mutation_id, memory_id: m.id, reason });
  }

  private async pullAll(report: SyncReport, onProgress?: (p: SyncProgress) => void): Promise<void> {
    let cursor = this.store.cursor();
    for (;;) {
      const answer = await this.client().pull(this.session, cursor, PULL_LIMIT);
      this.learnOffset(answer.offsetMs);
      const page = answer.body;
      if (page.status === "refetch") {
        if (report.refetched)
          throw new DionysusError("unavailable", `the VPS asked to refetch twice: ${page.reason}`);
        this.store.resetCache();
        // The VPS lost history (restored or reset): it may lack writes it had acknowledged.
        const resent = this.store.resendOwnVersions();
        this.log({ event: "sync_refetch", reason: page.reason, resent });
        report.refetched = true;
        cursor = undefined;
        continue;
      }
      const applied = this.store.applyChanges(page.changes, page.cursor, page.conflicts);
      report.pulled += page.changes.length;
      report.conflicts += applied.conflicts;
      cursor = page.cursor;
      onProgress?.({ phase: "pull", done: report.pulled, total: undefined });
      if (page.up_to_date) return;
    }
  }

  private succeeded(): void {
    this.online = true;
    this.failures = 0;
    this.honouringRetryAfter = false;
    this.backoffMs = 0;
    this.nextAttemptAt = undefined;
    this.lastError = undefined;
    this.store.setMeta(SYNC_META.lastSuccessAt, new Date().toISOString());
    this.store.setMeta(SYNC_META.lastError, "");
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private failed(err: unknown): void {
    this.lastError = messageOf(err);
    this.store.setMeta(SYNC_META.lastError, this.lastError);
    if (isDionysusError(err) && (err.code === "unauthorized" || err.code === "busy")) {
      this.log({ event: "sync_skipped", reason: this.lastError });
      return;
    }
    this.failures++;
    if (!isDionysusError(err) || err.code === "unavailable") this.online = false;
    this.backoffMs = this.delayFor(err, this.failures);
    this.honouringRetryAfter = retryAfterOf(err) !== undefined;
    this.nextAttemptAt = Date.now() + this.backoffMs;
    this.log({ event: "sync_failed", error: this.lastError, retry_in_ms: this.backoffMs });
    if (this.running) {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => void this.trigger("retry"), this.backoffMs);
    }
  }

  private delayFor(err: unknown, attempt: number): number {
    return retryAfterOf(err) ?? Math.round(backoffDelay(attempt, this.opts.random) * this.opts.retryScale);
  }

  private learnOffset(offsetMs: number | undefined): void {
    if (offsetMs === undefined || Math.abs(offsetMs - this.clockOffset) < 1_000) return;
    this.clockOffset = offsetMs;
    // The store persists it (SYNC_META.clockOffset, read back by the constructor).
    this.store.setClockOffset(offsetMs);
    this.log({ event: "clock_offset", offset_ms: offsetMs });
  }

  private client(): VpsClient {
    return this.session.client();
  }

  private log(event: Record<string, unknown>): void {
    this.opts.log?.({ component: "sync", ...event });
  }
}

function emptyReport(): SyncReport {
  return { pushed: 0, rejected: 0, pulled: 0, conflicts: 0, refetched: false, evicted: 0 };
}

/** Bytes of the push envelope around the mutations, `{"mutations":[` and `]}`, less one comma
 * (each mutation is counted with one; the last has none). */
const PUSH_ENVELOPE_BYTES = 15;

/** UTF-8 bytes of one mutation in a push body (with its comma); infinite when it cannot be
 * encoded at all (nested too deep for JSON.stringify: only a database written before the limits). */
function mutationBytes(m: Mutation): number {
  try {
    return jsonBytes(m) + 1;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}

/** UTF-8 bytes of the push body carrying `mutations`, exactly as it is sent. */
export function pushBytes(mutations: readonly Mutation[]): number {
  let size = PUSH_ENVELOPE_BYTES;
  for (const m of mutations) size += mutationBytes(m);
  return size;
}

/**
 * Splits mutations, in order, into pushes whose bodies (measured as sent: UTF-8 of the JSON, with
 * its escapes) stay under `maxBytes`, at most {@link MAX_PUSH_MUTATIONS} each. A mutation larger
 * than `maxBytes` on its own gets a push of its own (the caller refuses it).
 */
export function chunkByBytes(mutations: Mutation[], maxBytes: number): Mutation[][] {
  return measuredChunks(mutations, maxBytes).map((c) => c.mutations);
}

/** A push's mutations with the bytes of its body, so that nothing is encoded twice to measure. */
interface MeasuredChunk {
  mutations: Mutation[];
  bytes: number;
}

const measured = (mutations: Mutation[]): MeasuredChunk => ({ mutations, bytes: pushBytes(mutations) });

/** {@link chunkByBytes}, keeping each push's body size. */
function measuredChunks(mutations: Mutation[], maxBytes: number): MeasuredChunk[] {
  const chunks: MeasuredChunk[] = [];
  let current: Mutation[] = [];
  let size = PUSH_ENVELOPE_BYTES;
  for (const m of mutations) {
    const bytes = mutationBytes(m);
    if (current.length > 0 && (size + bytes > maxBytes || current.length >= MAX_PUSH_MUTATIONS)) {
      chunks.push({ mutations: current, bytes: size });
      current = [];
      size = PUSH_ENVELOPE_BYTES;
    }
    current.push(m);
    size += bytes;
  }
  if (current.length > 0) chunks.push({ mutations: current, bytes: size });
  return chunks;
}
