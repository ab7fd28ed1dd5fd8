/**
 * The sync engine's realtime link: a `GET /v1/events` stream kept open while logged in. Each
 * `changes` event pokes the engine (a pull follows); a lost stream is reopened after a jittered
 * delay (or the server's Retry-After), resuming from the last event id seen. A stream that goes
 * silent (no heartbeat for `idleMs`) counts as lost. The engine's periodic cycle is the fallback
 * when the stream is down.
 */
import { reconnectDelay } from "../../core/backoff.ts";
import { messageOf, retryAfterOf } from "../../core/errors.ts";
import type { EdgeStore } from "../store/types.ts";
import { SYNC_META } from "./meta.ts";
import type { SyncSession } from "./session.ts";

export interface RealtimeLinkOptions {
  store: EdgeStore;
  session: SyncSession;
  /** Whether the engine still runs; the loop ends when it stops. */
  running: () => boolean;
  /** While not logged in, how often the credentials are looked at (at most 2 s). */
  intervalMs: number;
  /** A stream silent this long (the VPS sends a heartbeat every 15 s) is taken as lost and
   * reopened: a link that died without a reset never ends it otherwise. */
  idleMs: number;
  random: () => number;
  /** Multiplies the reconnect delays (testing knob; see SyncEngineOptions.retryScale). */
  retryScale?: number;
  /** The stream (re)opened: the VPS is back. */
  onOpen: () => void;
  /** A `changes` event arrived. */
  onEvent: () => void;
  log: (event: Record<string, unknown>) => void;
}

export class RealtimeLink {
  /** Whether the stream is open now. */
  up = false;
  private events: AbortController | undefined;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();

  constructor(private readonly opts: RealtimeLinkOptions) {}

  /** Keeps the stream open until the engine stops. */
  async run(): Promise<void> {
    const { store, session, running } = this.opts;
    let attempt = 0;
    while (running()) {
      if (session.authState() !== "ok") {
        // Waiting for `dionysus login`: checking the credentials file is one stat call.
        await this.sleep(Math.min(this.opts.intervalMs, 2_000));
        continue;
      }
      this.events = new AbortController();
      let serverWait = 0;
      try {
        const lastSeen = store.getMeta(SYNC_META.eventsLastId);
        const onOpen = () => {
          this.up = true;
          // The stream is up: the next loss of it starts the reconnect delays from 1 s again.
          attempt = 0;
          this.opts.onOpen();
        };
        const stream = session
          .client()
          .events(session, lastSeen, this.events.signal, onOpen, this.opts.idleMs);
        for await (const ev of stream) {
          this.up = true;
          attempt = 0;
          store.setMeta(SYNC_META.eventsLastId, String(ev.seq));
          this.opts.onEvent();
        }
      } catch (err) {
        if (!running()) break;
        serverWait = retryAfterOf(err) ?? 0;
        this.opts.log({ event: "realtime_disconnected", error: messageOf(err) });
      }
      this.up = false;
      if (!running()) break;
      const delay = Math.round(reconnectDelay(++attempt, this.opts.random) * (this.opts.retryScale ?? 1));
      await this.sleep(Math.max(serverWait, delay));
    }
  }

  /** Closes the stream and drops pending waits (call after `running` turned false). */
  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.events?.abort();
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
}
