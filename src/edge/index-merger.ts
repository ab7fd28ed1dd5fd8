/**
 * Keeps the keyword index merged while the daemon is idle (see store/sqlite/index-merge.ts for
 * why a merged index makes recall faster). Every `pollMs` it reads the index's shape (one small
 * row): a change there is a write (from this daemon, a sync pull, or a CLI process beside it).
 * Once the index has not changed and no request came (`activeAt`) for `idleMs`, and the store
 * wants a merge, it runs one turn of slices (by default a single slice), then the next turn
 * `gapMs` later, so that requests are served between turns, until the merge is done. A write or a
 * request meanwhile pauses it until all is quiet again, unless the merge has been wanted for
 * `maxWaitMs` (a store written or asked without pause is merged anyway). Never on the request
 * path; the one-shot CLI commands do not run it. When the index needs no merge, the same quiet
 * time gives memories without a vector theirs (`embed`), in turns of `embedTurnMs`.
 */
import type { IndexMergeResult, IndexUpkeep } from "./store/types.ts";

export interface IndexMergerOptions {
  store: IndexUpkeep;
  /** Clock (ms); tests drive it. */
  now?: () => number;
  /** Timers; tests drive them (default: unref'd setTimeout). */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /** Quiet time after the last index change before merging (default 5 s). */
  idleMs?: number;
  /** How often the index's shape is read (default 2 s). */
  pollMs?: number;
  /** Time budget of one turn of slices (default 0: one slice a turn, so that the event loop is
   * never held for more than a slice). */
  turnMs?: number;
  /** Pause between turns, for requests (default 10 ms). */
  gapMs?: number;
  /** Merge even though writes continue, once a merge has been wanted this long (default 10 min). */
  maxWaitMs?: number;
  /** When the daemon last served a request (ms, same clock as `now`): the index must also have
   * been quiet of requests for `idleMs`, so that a burst of recalls meets no slice. */
  activeAt?: () => number;
  /** Debug lines: `index_merged` with segments, slices, ms; `vectors_embedded`. */
  log?: (event: Record<string, unknown>) => void;
  /** Idle work of its own, after the merge: give memories their vectors for about `maxMs`
   * (the store's embedPending), so that the first semantic recall after an import or an upgrade
   * does not embed them all. Looked at again after each change of the index. */
  embed?: (maxMs: number) => { embedded: number; done: boolean };
  /** Time budget of one embedding turn (default 20 ms). */
  embedTurnMs?: number;
}

export interface IndexMerger {
  /** One step: reads the index's shape and runs a turn if it is time. Returns the delay (ms) to
   * the next step. The timer calls it; tests call it directly. */
  step(): number;
  stop(): void;
}

export function startIndexMerger(opts: IndexMergerOptions): IndexMerger {
  const {
    store,
    now = Date.now,
    idleMs = 5000,
    pollMs = 2000,
    turnMs = 0,
    gapMs = 10,
    maxWaitMs = 10 * 60_000,
    embedTurnMs = 20,
    log,
  } = opts;
  const setTimer =
    opts.setTimer ??
    ((fn: () => void, ms: number) => {
      const t = setTimeout(fn, ms);
      (t as { unref?: () => void }).unref?.();
      return t;
    });
  const clearTimer = opts.clearTimer ?? ((h: unknown) => clearTimeout(h as ReturnType<typeof setTimeout>));

  let seen: string | undefined;
  /** Whether memories may lack a vector: at the start, and after every change of the index. */
  let vectorsDue = opts.embed !== undefined;
  let embeddedRun = 0;
  let changedAt = now();
  let wantedSince: number | undefined;
  /** The merge in progress, summed over its turns. */
  let run:
    | { segmentsBefore: number; slices: number; pages: number; ms: number; maxSliceMs: number; turns: number }
    | undefined;
  let timer: unknown;
  let stopped = false;

  function step(): number {
    const t = now();
    const stats = store.indexStats();
    if (stats.version !== seen) {
      seen = stats.version;
      changedAt = t;
      vectorsDue = opts.embed !== undefined;
    }
    const quietSince = Math.max(changedAt, opts.activeAt?.() ?? Number.NEGATIVE_INFINITY);
    if (!stats.mergeWanted) {
      wantedSince = undefined;
      if (!vectorsDue || t - quietSince < idleMs) return pollMs;
      const e = opts.embed!(embedTurnMs);
      embeddedRun += e.embedded;
      if (!e.done) return gapMs;
      vectorsDue = false;
      if (embeddedRun > 0) log?.({ level: "debug", event: "vectors_embedded", memories: embeddedRun });
      embeddedRun = 0;
      return pollMs;
    }
    wantedSince ??= t;
    if (t - quietSince < idleMs && t - wantedSince < maxWaitMs) return pollMs;
    const r: IndexMergeResult = store.mergeIndex({ maxMs: turnMs });
    // The merge's own changes are not writes.
    seen = store.indexStats().version;
    run ??= { segmentsBefore: r.segmentsBefore, slices: 0, pages: 0, ms: 0, maxSliceMs: 0, turns: 0 };
    run.slices += r.slices;
    run.pages += r.pages;
    run.ms += r.ms;
    run.maxSliceMs = Math.max(run.maxSliceMs, r.maxSliceMs);
    run.turns++;
    if (!r.done) return gapMs;
    log?.({
      level: "debug",
      event: "index_merged",
      segments_before: run.segmentsBefore,
      segments: r.segments,
      slices: run.slices,
      pages: run.pages,
      turns: run.turns,
      ms: Math.round(run.ms),
      max_slice_ms: Math.round(run.maxSliceMs * 10) / 10,
    });
    run = undefined;
    wantedSince = undefined;
    return pollMs;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    timer = setTimer(() => {
      let next = pollMs;
      try {
        next = step();
      } catch (err) {
        // A busy database or a full disk: try again at the next poll.
        log?.({ level: "warn", event: "index_merge_failed", error: (err as Error).message });
      }
      schedule(next);
    }, ms);
  }
  schedule(pollMs);

  return {
    step,
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimer(timer);
    },
  };
}
