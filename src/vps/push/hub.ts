/**
 * The realtime hub of one VPS instance: the open `GET /v1/events` streams, by user. A poke carries
 * only the latest seq ("changes available"); each stream gets at most one per `coalesceMs`, always
 * with the newest seq. A user is only ever poked about their own changes: pokes are routed by the
 * user id of the notification, and a stream belongs to the user of its access token.
 */
import type { Job } from "../../core/protocol/heavy.ts";
import type { ChangesEvent } from "../../core/protocol/sync.ts";

export interface HubStream {
  readonly user_id: string;
  readonly device_id: string;
  /** Writes one `changes` event. */
  send(event: ChangesEvent): void;
  /** Writes one `job` event (a consolidation of the user started or finished). */
  sendJob?(job: Job): void;
  /** Ends the stream (device revoked, server stopping). */
  close(): void;
}

interface Entry {
  stream: HubStream;
  lastSentAt: number;
  lastSentSeq: number;
  pendingSeq: number | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export interface PushHubOptions {
  /** Builds the cursor for a seq (the epoch lives with the sync service). */
  cursorFor(seq: number): string;
  /** Least time between two pokes on one stream (ms), 50 by default. */
  coalesceMs?: number;
}

export class PushHub {
  private readonly byUser = new Map<string, Set<Entry>>();
  private readonly coalesceMs: number;

  constructor(private readonly options: PushHubOptions) {
    this.coalesceMs = options.coalesceMs ?? 50;
  }

  /** Adds a stream; returns its removal function. */
  add(stream: HubStream): () => void {
    const entry: Entry = { stream, lastSentAt: 0, lastSentSeq: 0, pendingSeq: undefined, timer: undefined };
    let set = this.byUser.get(stream.user_id);
    if (!set) {
      set = new Set();
      this.byUser.set(stream.user_id, set);
    }
    set.add(entry);
    return () => this.remove(entry);
  }

  private remove(entry: Entry): void {
    if (entry.timer) clearTimeout(entry.timer);
    const set = this.byUser.get(entry.stream.user_id);
    if (!set) return;
    set.delete(entry);
    if (set.size === 0) this.byUser.delete(entry.stream.user_id);
  }

  /** Tells every stream of `userId` that its feed reached `seq`. */
  poke(userId: string, seq: number): void {
    const set = this.byUser.get(userId);
    if (!set) return;
    for (const e of set) this.schedule(e, seq);
  }

  /** Tells every stream of `userId` about one of the user's jobs (not coalesced: they are rare). */
  sendJob(userId: string, job: Job): void {
    for (const e of [...(this.byUser.get(userId) ?? [])]) {
      try {
        e.stream.sendJob?.(job);
      } catch {
        this.remove(e);
      }
    }
  }

  /** Pokes one stream right away (a resume with Last-Event-ID behind the feed). */
  pokeNow(stream: HubStream, seq: number): void {
    for (const e of this.byUser.get(stream.user_id) ?? [])
      if (e.stream === stream) {
        e.pendingSeq = Math.max(e.pendingSeq ?? 0, seq);
        this.flush(e);
      }
  }

  private schedule(e: Entry, seq: number): void {
    if (seq <= e.lastSentSeq) return;
    e.pendingSeq = Math.max(e.pendingSeq ?? 0, seq);
    if (e.timer) return;
    const wait = e.lastSentAt + this.coalesceMs - Date.now();
    if (wait <= 0) this.flush(e);
    else
      e.timer = setTimeout(() => {
        e.timer = undefined;
        this.flush(e);
      }, wait);
  }

  private flush(e: Entry): void {
    const seq = e.pendingSeq;
    if (seq === undefined) return;
    e.pendingSeq = undefined;
    e.lastSentAt = Date.now();
    e.lastSentSeq = seq;
    try {
      e.stream.send({ seq, cursor: this.options.cursorFor(seq) });
    } catch {
      this.remove(e);
    }
  }

  /** Closes the streams of a revoked device. */
  disconnectDevice(userId: string, deviceId: string): void {
    for (const e of [...(this.byUser.get(userId) ?? [])])
      if (e.stream.device_id === deviceId) {
        this.remove(e);
        e.stream.close();
      }
  }

  /** Closes every stream (shutdown). */
  closeAll(): void {
    for (const set of [...this.byUser.values()])
      for (const e of [...set]) {
        this.remove(e);
        e.stream.close();
      }
  }

  /** Open streams. */
  get connections(): number {
    let n = 0;
    for (const set of this.byUser.values()) n += set.size;
    return n;
  }

  /** Distinct devices with at least one open stream. */
  get devices(): number {
    const ids = new Set<string>();
    for (const [user, set] of this.byUser) for (const e of set) ids.add(`${user}\u0000${e.stream.device_id}`);
    return ids.size;
  }
}
