/**
 * Hybrid logical clock (Kulkarni et al.): a timestamp that follows physical time but never goes
 * backwards and orders causally related events even when wall clocks disagree.
 *
 * A stamp is `ms.counter.node` encoded as a fixed-width string, `000001764259200000-000000-<node>`,
 * so that comparing two stamps as plain strings (byte order, `COLLATE "C"` in Postgres) gives the
 * same order as comparing (ms, counter, node) as a tuple: last-write-wins needs nothing else.
 */

export interface Hlc {
  /** Milliseconds since the Unix epoch (physical part). */
  ms: number;
  /** Logical counter within one millisecond. */
  counter: number;
  /** The node (device) id; breaks ties so that no two devices produce equal stamps. */
  node: string;
}

const MS_WIDTH = 15;
const COUNTER_WIDTH = 6;
const MAX_COUNTER = 999_999;
const STAMP_RE = /^(\d{15})-(\d{6})-([A-Za-z0-9_.:-]{1,64})$/;

export function formatHlc(h: Hlc): string {
  return `${String(h.ms).padStart(MS_WIDTH, "0")}-${String(h.counter).padStart(COUNTER_WIDTH, "0")}-${h.node}`;
}

/** Parses a stamp; returns undefined when it is not a valid stamp. */
export function parseHlc(s: string): Hlc | undefined {
  const m = STAMP_RE.exec(s);
  if (!m) return undefined;
  return { ms: Number(m[1]), counter: Number(m[2]), node: m[3]! };
}

export const isHlc = (s: string): boolean => STAMP_RE.test(s);

/** Orders two stamps: negative when a < b. Plain string order, by construction. */
export function compareHlc(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A clock for one node. `now` is injectable so that the edge can correct for a wrong device
 * clock with the offset it learns from the VPS, and so that tests can drive time.
 */
export class HlcClock {
  private last: Hlc;

  constructor(
    readonly node: string,
    private readonly now: () => number = Date.now,
    last?: string,
  ) {
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(node)) throw new Error(`invalid HLC node id: ${node}`);
    this.last = (last && parseHlc(last)) || { ms: 0, counter: 0, node };
  }

  /** A new stamp for a local event, strictly greater than every stamp seen so far. */
  tick(): string {
    const wall = Math.floor(this.now());
    if (wall > this.last.ms) this.last = { ms: wall, counter: 0, node: this.node };
    else this.last = this.bump(this.last.ms, this.last.counter + 1);
    return formatHlc(this.last);
  }

  /** Merges a stamp received from elsewhere, so later local stamps order after it. */
  receive(remote: string): void {
    const r = parseHlc(remote);
    if (!r) return;
    const wall = Math.floor(this.now());
    const ms = Math.max(wall, this.last.ms, r.ms);
    let counter = 0;
    if (ms === this.last.ms && ms === r.ms) counter = Math.max(this.last.counter, r.counter) + 1;
    else if (ms === this.last.ms) counter = this.last.counter + 1;
    else if (ms === r.ms) counter = r.counter + 1;
    this.last = this.bump(ms, counter);
  }

  /** The last stamp issued or received, for persisting across restarts. */
  current(): string {
    return formatHlc(this.last);
  }

  private bump(ms: number, counter: number): Hlc {
    // A counter overflow means more than a million events in one millisecond: borrow the next ms.
    if (counter > MAX_COUNTER) return { ms: ms + 1, counter: 0, node: this.node };
    return { ms, counter, node: this.node };
  }
}

/** The physical time of a stamp, in ms. */
export const hlcMs = (s: string): number => parseHlc(s)?.ms ?? 0;
