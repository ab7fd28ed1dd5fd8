/**
 * The sync engine (DESIGN.md "Sync protocol"; FR-008..012). It runs inside `dionysus serve`
 * (and once, in the foreground, for `dionysus sync` when no daemon runs):
 *
 * - a cycle pulls, pushes, then pulls again if it pushed anything;
 * - push: due queue items in mutation order, in batches; per-item answers settle the queue;
 * - pull: pages of the change feed until `up_to_date`, each page stored with its cursor;
 * - timers drive it: a debounced push after local writes, a cycle every `intervalMs`, a retry
 *   timer after failures (10 s, 60 s, 300 s with jitter; Retry-After wins), and realtime pokes
 *   from `GET /v1/events`, reconnected with jitter. The periodic pull is the fallback.
 *
 * Only one engine may push for a database at a time: mutation numbers must reach the VPS in
 * order. A lease in the store's meta table (renewed every cycle) makes a second engine (for
 * example `dionysus sync` while a daemon runs) wait instead of racing.
 */
import { backoffDelay, reconnectDelay } from "../../core/backoff.ts";
import { DionysusError, isDionysusError } from "../../core/errors.ts";
import { MAX_PUSH_MUTATIONS, type Mutation } from "../../core/protocol/sync.ts";
import { uuidv7 } from "../../core/uuid.ts";
import { jsonBytes } from "../../core/validate.ts";
import { pidAlive } from "../daemon-file.ts";
import type { EdgeStore, QueueItem } from "../store/types.ts";
import { type Credentials, credentialsMtime, readCredentials, writeCredentials } from "./credentials.ts";
import { type TokenSource, VpsClient } from "./vps-client.ts";

export type AuthState = "none" | "ok" | "reauth_required";

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
  /** Background cycle interval (FR-008, default 30 s). */
  intervalMs?: number;
  /** Delay between a local write and its push. */
  pushDebounceMs?: number;
  /** Keep a realtime `GET /v1/events` stream open (default true). */
  realtime?: boolean;
  /** Database size above which cached VPS memories are evicted (LRU). */
  storageLimitBytes?: number;
  /** Largest push body, in bytes (default 4 MiB, under the VPS's default limit of 5 MiB). A
   * mutation larger than this on its own is marked `failed`; a batch the VPS refuses as too large
   * (413) is split, down to single mutations. */
  maxPushBytes?: number;
  random?: () => number;
  /** This device's wall clock (ms); the VPS clock's offset is measured against it. Tests skew it. */
  now?: () => number;
  log?: (event: Record<string, unknown>) => void;
}

const PUSH_CLAIM = 500;
const PUSH_MAX_BYTES = 4 * 1024 * 1024;
const PULL_LIMIT = 500;
const LEASE_MS = 120_000;
const REFRESH_MARGIN_MS = 120_000;
/** Meta key: the device id a split in progress is taking (see `ensureIdentity`). */
const SPLIT_TARGET_KEY = "identity_split_target";

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

export class SyncEngine implements TokenSource {
  private readonly store: EdgeStore;
  private readonly opts: Required<Omit<SyncEngineOptions, "log" | "storageLimitBytes" | "now">> &
    Pick<SyncEngineOptions, "log" | "storageLimitBytes" | "now">;
  private creds: Credentials | undefined;
  private credsMtime = -1;
  private client: VpsClient | undefined;
  private refreshing: Promise<boolean> | undefined;
  private cycle: Promise<SyncReport> | undefined;
  private again = false;
  private timers = new Set<ReturnType<typeof setTimeout>>();
  private intervalTimer: ReturnType<typeof setInterval> | undefined;
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private events: AbortController | undefined;
  private running = false;
  private readonly leaseOwner = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

  private online = false;
  private realtimeUp = false;
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
      pushDebounceMs: 200,
      realtime: true,
      maxPushBytes: PUSH_MAX_BYTES,
      random: Math.random,
      ...options,
    };
    const offset = Number(this.store.getMeta("clock_offset_ms") ?? 0);
    this.clockOffset = Number.isFinite(offset) ? offset : 0;
  }

  // ---- lifecycle ----

  /** Starts the background loops. Rows left `syncing` by a crash go back to `queued`. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.intervalTimer = setInterval(() => void this.trigger("interval"), this.opts.intervalMs);
    void this.trigger("start");
    if (this.opts.realtime) void this.realtimeLoop();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.intervalTimer) clearInterval(this.intervalTimer);
    for (const t of [this.pushTimer, this.retryTimer, ...this.timers]) if (t) clearTimeout(t);
    this.timers.clear();
    this.events?.abort();
    await this.cycle?.catch(() => undefined);
    this.releaseLease();
  }

  /** Called after each local write: pushes soon (debounced). */
  notifyLocalWrite(): void {
    if (!this.running) return;
    if (this.pushTimer) clearTimeout(this.pushTimer);
    this.pushTimer = setTimeout(() => void this.trigger("local-write"), this.opts.pushDebounceMs);
  }

  /**
   * Runs one full cycle now (push everything queued, then pull until up to date), ignoring the
   * backoff timer. Concurrent calls share one cycle. Throws when the cycle fails.
   */
  syncNow(onProgress?: (p: SyncProgress) => void): Promise<SyncReport> {
    return this.runCycle(onProgress);
  }

  authState(): AuthState {
    this.loadCredentials();
    if (!this.creds) return "none";
    return this.creds.reauth_required ? "reauth_required" : "ok";
  }

  isOnline(): boolean {
    return this.online;
  }

  status(): SyncStatus {
    const auth = this.authState();
    const stored = (k: string) => this.store.getMeta(k) || null;
    return {
      auth,
      vps_url: this.creds?.vps_url ?? null,
      online: this.online,
      realtime: !this.opts.realtime || !this.running ? "off" : this.realtimeUp ? "connected" : "disconnected",
      last_success_at: stored("sync_last_success_at"),
      last_attempt_at: iso(this.lastAttemptAt) ?? stored("sync_last_attempt_at"),
      next_attempt_at: iso(this.nextAttemptAt),
      backoff_ms: this.backoffMs,
      consecutive_failures: this.failures,
      last_error: this.lastError ?? stored("sync_last_error"),
      clock_offset_ms: this.clockOffset,
      failed_items: this.store.queueItems("failed", FAILED_ITEMS_SHOWN),
    };
  }

  // ---- token source ----

  async accessToken(): Promise<string> {
    const creds = this.requireCreds();
    if (creds.access_expires_at - Date.now() < REFRESH_MARGIN_MS && !(await this.refresh())) {
      throw new DionysusError("unauthorized", "re-authentication needed: run dionysus login");
    }
    return this.requireCreds().access_token;
  }

  /** Refreshes the tokens once at a time (refresh tokens rotate: two refreshes at once would
   * look like token theft to the VPS and revoke the family). */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const creds = this.requireCreds();
    const r = await this.requireClient().refreshToken(creds.refresh_token);
    if (r.ok) {
      this.saveCredentials({
        ...creds,
        access_token: r.token.access_token,
        refresh_token: r.token.refresh_token,
        access_expires_at: Date.now() + r.token.expires_in * 1000,
        reauth_required: false,
      });
      return true;
    }
    this.saveCredentials({ ...creds, reauth_required: true });
    this.log({ event: "auth_refresh_refused", error: r.error.error });
    return false;
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
    if (!this.acquireLease()) {
      throw new DionysusError("busy", "another dionysus process is syncing this data dir");
    }
    this.lastAttemptAt = Date.now();
    this.store.setMeta("sync_last_attempt_at", new Date(this.lastAttemptAt).toISOString());
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
      this.renewLease();
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
      const chunks = chunkByBytes(claimed, this.opts.maxPushBytes);
      while (chunks.length > 0) {
        const chunk = chunks.shift()!;
        const alone = chunk.length === 1 ? chunk[0]! : undefined;
        const bytes = alone ? pushBytes(chunk) : 0;
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
          answer = await this.requireClient().push(this, chunk);
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
              chunks.unshift(chunk.slice(0, half), chunk.slice(half));
            }
            continue;
          }
          // Everything claimed and not yet answered goes back to the queue, with backoff.
          this.store.release([...pending], describe(err), Date.now() + this.delayFor(err, this.failures + 1));
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

  /**
   * Makes sure this data dir pushes as a device of its own. A copy (noticed by the store when
   * opened, or by the VPS as `device_diverged`) asks the VPS for a new device id with the split
   * grant: memories and queued writes stay, the writes go out under the new id. The steps are
   * ordered so that a crash anywhere leaves a state the next cycle finishes: the target id is
   * recorded first, then the credentials, then the store.
   */
  private async ensureIdentity(): Promise<void> {
    const creds = this.requireCreds();
    const target = this.store.getMeta(SPLIT_TARGET_KEY);
    if (target && creds.device_id === target && this.store.deviceId !== target) {
      this.store.resetDeviceId(target);
      this.store.setMeta(SPLIT_TARGET_KEY, "");
    }
    const why = this.store.splitPending();
    if (!why) return;
    const from = this.store.deviceId;
    const newId = uuidv7();
    this.store.setMeta(SPLIT_TARGET_KEY, newId);
    const r = await this.requireClient().splitDevice(creds.refresh_token, { device_id: newId });
    if (!r.ok) {
      // The copy's refresh token was rotated since (by the original, or by the device before a
      // rollback). Go on locally under the new id; `dionysus login` registers it.
      this.store.resetDeviceId(newId);
      this.store.setMeta(SPLIT_TARGET_KEY, "");
      this.saveCredentials({ ...creds, reauth_required: true });
      this.log({ event: "device_split", from, to: newId, reason: why, vps: r.error.error });
      throw new DionysusError(
        "unauthorized",
        `this data dir was copied or restored (${why}) and its sign-in is no longer current: run dionysus login (memories and queued writes are kept)`,
      );
    }
    this.saveCredentials({
      ...creds,
      device_id: r.token.device_id,
      access_token: r.token.access_token,
      refresh_token: r.token.refresh_token,
      access_expires_at: Date.now() + r.token.expires_in * 1000,
      reauth_required: false,
    });
    this.store.resetDeviceId(r.token.device_id);
    this.store.setMeta(SPLIT_TARGET_KEY, "");
    this.log({ event: "device_split", from, to: r.token.device_id, reason: why });
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
      const answer = await this.requireClient().pull(this, cursor, PULL_LIMIT);
      this.learnOffset(answer.offsetMs);
      const page = answer.body;
      if (page.status === "refetch") {
        if (report.refetched)
          throw new DionysusError("unavailable", `the VPS asked to refetch twice: ${page.reason}`);
        this.log({ event: "sync_refetch", reason: page.reason });
        this.store.resetCache();
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
    this.store.setMeta("sync_last_success_at", new Date().toISOString());
    this.store.setMeta("sync_last_error", "");
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private failed(err: unknown): void {
    this.lastError = describe(err);
    this.store.setMeta("sync_last_error", this.lastError);
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
    return retryAfterOf(err) ?? backoffDelay(attempt, this.opts.random);
  }

  private learnOffset(offsetMs: number | undefined): void {
    if (offsetMs === undefined || Math.abs(offsetMs - this.clockOffset) < 1_000) return;
    this.clockOffset = offsetMs;
    // The store persists it (meta `clock_offset_ms`, read back by the constructor).
    this.store.setClockOffset(offsetMs);
    this.log({ event: "clock_offset", offset_ms: offsetMs });
  }

  // ---- realtime ----

  private async realtimeLoop(): Promise<void> {
    let attempt = 0;
    while (this.running) {
      if (this.authState() !== "ok") {
        // Waiting for `dionysus login`: checking the credentials file is one stat call.
        await this.sleep(Math.min(this.opts.intervalMs, 2_000));
        continue;
      }
      this.events = new AbortController();
      let serverWait = 0;
      try {
        const lastSeen = this.store.getMeta("events_last_id");
        const onOpen = () => {
          this.realtimeUp = true;
          // The stream is up: the next loss of it starts the reconnect delays from 1 s again.
          attempt = 0;
          // Reconnected: the VPS is back. Anything queued meanwhile goes now, not at the next timer.
          if (!this.online || this.failures > 0 || this.store.queueCounts().queued > 0)
            void this.trigger("reconnect");
        };
        for await (const ev of this.requireClient().events(this, lastSeen, this.events.signal, onOpen)) {
          this.realtimeUp = true;
          this.online = true;
          attempt = 0;
          this.store.setMeta("events_last_id", String(ev.seq));
          void this.trigger("poke");
        }
      } catch (err) {
        if (!this.running) break;
        serverWait = retryAfterOf(err) ?? 0;
        this.log({ event: "realtime_disconnected", error: describe(err) });
      }
      this.realtimeUp = false;
      if (!this.running) break;
      await this.sleep(Math.max(serverWait, reconnectDelay(++attempt, this.opts.random)));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  // ---- credentials and lease ----

  private loadCredentials(): void {
    const mtime = credentialsMtime(this.opts.dataDir);
    if (mtime === this.credsMtime) return;
    this.credsMtime = mtime;
    this.creds = mtime === 0 ? undefined : readCredentials(this.opts.dataDir);
    if (this.creds && this.client?.baseUrl !== this.creds.vps_url)
      this.client = new VpsClient({
        baseUrl: this.creds.vps_url,
        ...(this.opts.now ? { now: this.opts.now } : {}),
      });
    if (!this.creds) this.client = undefined;
    if (this.creds && !this.creds.reauth_required) {
      // A fresh login: retry at once instead of waiting out an old backoff.
      this.nextAttemptAt = undefined;
    }
  }

  private saveCredentials(creds: Credentials): void {
    writeCredentials(this.opts.dataDir, creds);
    this.creds = creds;
    this.credsMtime = credentialsMtime(this.opts.dataDir);
  }

  private requireCreds(): Credentials {
    this.loadCredentials();
    if (!this.creds) throw new DionysusError("unauthorized", "not logged in: run dionysus login URL");
    return this.creds;
  }

  private requireClient(): VpsClient {
    this.requireCreds();
    return this.client!;
  }

  private acquireLease(): boolean {
    const now = Date.now();
    const [owner, until] = (this.store.getMeta("sync_lease") ?? "").split("|");
    if (owner && owner !== this.leaseOwner && Number(until) > now && leaseHolderAlive(owner)) return false;
    this.store.setMeta("sync_lease", `${this.leaseOwner}|${now + LEASE_MS}`);
    if (owner !== this.leaseOwner) this.store.requeueSyncing();
    return true;
  }

  private renewLease(): void {
    if (this.running) this.store.setMeta("sync_lease", `${this.leaseOwner}|${Date.now() + LEASE_MS}`);
    else this.releaseLease();
  }

  private releaseLease(): void {
    const [owner] = (this.store.getMeta("sync_lease") ?? "").split("|");
    if (owner === this.leaseOwner) this.store.setMeta("sync_lease", "");
  }

  private log(event: Record<string, unknown>): void {
    this.opts.log?.({ component: "sync", ...event });
  }
}

/**
 * Whether the process named in a lease (`<pid>-<random>`) still runs. The data dir is local, so
 * a dead pid means the holder crashed (SIGKILL, power loss) without releasing the lease: its
 * successor must not wait out the rest of it.
 */
function leaseHolderAlive(owner: string): boolean {
  const pid = Number(owner.split("-")[0]);
  return !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid);
}

/** The wait a server asked for (Retry-After of a 429 or 503), in ms. */
function retryAfterOf(err: unknown): number | undefined {
  const ms = isDionysusError(err) ? err.details?.retry_after_ms : undefined;
  return typeof ms === "number" ? ms : undefined;
}

function emptyReport(): SyncReport {
  return { pushed: 0, rejected: 0, pulled: 0, conflicts: 0, refetched: false, evicted: 0 };
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
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
  const chunks: Mutation[][] = [];
  let current: Mutation[] = [];
  let size = PUSH_ENVELOPE_BYTES;
  for (const m of mutations) {
    const bytes = mutationBytes(m);
    if (current.length > 0 && (size + bytes > maxBytes || current.length >= MAX_PUSH_MUTATIONS)) {
      chunks.push(current);
      current = [];
      size = PUSH_ENVELOPE_BYTES;
    }
    current.push(m);
    size += bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}
