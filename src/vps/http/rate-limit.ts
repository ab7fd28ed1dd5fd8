/**
 * Fixed-window rate limiter, in memory, per VPS instance: `limit` requests per key per
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

/** A failure budget of one key: how many failures a window allows. */
export interface FailureRule {
  key: string;
  limit: number;
}

/**
 * Failed sign-ins, counted per key in a fixed window (15 min by default). An attempt reserves
 * one failure on every key it touches before the (slow) password check and is refunded when the
 * password was right, so concurrent guesses cannot all slip in before the first failure counts.
 */
export class FailureBudget {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private lastSweep = 0;

  constructor(
    private readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Reserves one failure on each rule's key; when any key has no budget left nothing is
   * reserved and the answer says which rule refused and when its window ends.
   */
  reserve(
    rules: FailureRule[],
  ): { ok: true; refund: () => void } | { ok: false; rule: FailureRule; resetS: number } {
    const t = this.now();
    this.sweep(t);
    const live = rules.map((r) => {
      let w = this.windows.get(r.key);
      if (!w || t - w.start >= this.windowMs) {
        w = { start: t, count: 0 };
        this.windows.set(r.key, w);
      }
      return { rule: r, w };
    });
    const full = live.find(({ rule, w }) => w.count >= rule.limit);
    if (full)
      return {
        ok: false,
        rule: full.rule,
        resetS: Math.max(1, Math.ceil((full.w.start + this.windowMs - t) / 1000)),
      };
    for (const { w } of live) w.count++;
    let refunded = false;
    return {
      ok: true,
      refund: () => {
        if (refunded) return;
        refunded = true;
        for (const { rule, w } of live) if (this.windows.get(rule.key) === w && w.count > 0) w.count--;
      },
    };
  }

  private sweep(t: number): void {
    if (t - this.lastSweep < this.windowMs) return;
    this.lastSweep = t;
    for (const [k, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(k);
  }
}
