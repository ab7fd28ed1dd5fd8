/**
 * Fixed-window rate limiter (FR-020), in memory, per VPS instance: `limit` requests per key per
 * window. Keys are `device:<user>:<device>` for authenticated calls and `ip:<addr>` otherwise.
 */
export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the window resets. */
  resetS: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private lastSweep = 0;

  constructor(
    readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  hit(key: string): RateDecision {
    const t = this.now();
    this.sweep(t);
    let w = this.windows.get(key);
    if (!w || t - w.start >= this.windowMs) {
      w = { start: t, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    const resetS = Math.max(1, Math.ceil((w.start + this.windowMs - t) / 1000));
    return {
      allowed: w.count <= this.limit,
      limit: this.limit,
      remaining: Math.max(0, this.limit - w.count),
      resetS,
    };
  }

  /** Counts a failure without answering (used for failed sign-ins). */
  blocked(key: string): boolean {
    const w = this.windows.get(key);
    return !!w && this.now() - w.start < this.windowMs && w.count >= this.limit;
  }

  private sweep(t: number): void {
    if (t - this.lastSweep < this.windowMs) return;
    this.lastSweep = t;
    for (const [k, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(k);
  }
}
