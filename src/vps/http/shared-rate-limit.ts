/**
 * Rate limits that hold across every VPS instance on one PostgreSQL: the counters live in the
 * `rate_limits` table (unlogged: losing them in a database crash only resets the windows), one
 * row per key with the start of its current fixed window and the count in it, the same rule as
 * the in-memory {@link RateLimiter}: a key's first hit after its window ended starts a new one.
 *
 * Hits are grouped: at most one counting statement per instance is in flight, and every hit that
 * arrives meanwhile goes into the next one (`insert … on conflict do update … returning`), so a
 * burst of requests costs a few statements, not one each. When the database cannot be reached
 * the instance falls back to counting in its own memory (the limit then holds per instance).
 * Embedded PGlite serves one process, so it keeps the in-memory limiter. Failed sign-ins on
 * `/device` are counted the same way ({@link SharedFailureBudget}).
 */
import { type Kysely, sql } from "kysely";
import type { VpsTables } from "../db/schema.ts";
import { FailureBudget, type FailureRule, type RateDecision, RateLimiter } from "./rate-limit.ts";

interface Hit {
  key: string;
  at: number;
  resolve(counted: { start: number; count: number } | undefined): void;
}

/** Counts the hits of every shared limiter of one instance into `rate_limits`, in groups. */
export class RateCounterStore {
  private pending: Hit[] = [];
  private flushing = false;
  private lastSweep = 0;

  /** `namespace` keeps the keys (and the sweep) of stores with different windows apart. */
  constructor(
    private readonly db: Kysely<VpsTables>,
    private readonly windowMs = 60_000,
    private readonly namespace = "request",
  ) {}

  /** Counts one hit on `key` at `at` (ms): its window's start and the key's count after it, or
   * undefined when the database could not be reached. */
  count(key: string, at: number): Promise<{ start: number; count: number } | undefined> {
    return new Promise((resolve) => {
      this.pending.push({ key: this.stored(key), at, resolve });
      if (!this.flushing) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        const hits = this.pending;
        this.pending = [];
        await this.write(hits);
      }
    } finally {
      this.flushing = false;
    }
  }

  private async write(hits: Hit[]): Promise<void> {
    // One row per key in the statement (an upsert may not touch a row twice).
    const groups = new Map<string, Hit[]>();
    for (const h of hits) groups.set(h.key, [...(groups.get(h.key) ?? []), h]);
    const keys = [...groups.keys()];
    const at = keys.map((k) => groups.get(k)![0]!.at);
    const n = keys.map((k) => groups.get(k)!.length);
    await this.sweep(hits[0]!.at);
    try {
      const r = await sql<{ key: string; window_start: number | string; count: number }>`
        insert into rate_limits as r (key, window_start, count)
        select * from unnest(${keys}::text[], ${at}::bigint[], ${n}::int[])
        on conflict (key) do update set
          window_start = case when r.window_start <= excluded.window_start - ${this.windowMs}
            then excluded.window_start else r.window_start end,
          count = case when r.window_start <= excluded.window_start - ${this.windowMs}
            then excluded.count else r.count + excluded.count end
        returning key, window_start, count`.execute(this.db);
      const got = new Map(
        r.rows.map((x) => [x.key, { start: Number(x.window_start), total: Number(x.count) }]),
      );
      for (const [key, group] of groups) {
        const g = got.get(key);
        // The hits of a group took the last counts of the window, in arrival order.
        for (const [i, h] of group.entries())
          h.resolve(g ? { start: g.start, count: g.total - group.length + i + 1 } : undefined);
      }
    } catch {
      for (const h of hits) h.resolve(undefined);
    }
  }

  /** The row key: the namespace, then `key` with `%` and NUL escaped (PostgreSQL text cannot
   * hold NUL, which the sign-in keys use as a separator). */
  private stored(key: string): string {
    return `${this.namespace}/${key.replaceAll("%", "%25").replaceAll("\u0000", "%00")}`;
  }

  /** Takes back one hit on each of `keys` (a refunded or refused reservation). */
  async uncount(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    const stored = keys.map((k) => this.stored(k));
    await sql`update rate_limits set count = count - 1 where key = any(${stored}::text[]) and count > 0`
      .execute(this.db)
      .catch(() => {});
  }

  /** Drops the rows of ended windows (once a window per instance). */
  private async sweep(at: number): Promise<void> {
    if (at - this.lastSweep < this.windowMs) return;
    this.lastSweep = at;
    await sql`delete from rate_limits
      where starts_with(key, ${`${this.namespace}/`}) and window_start <= ${at - this.windowMs}`
      .execute(this.db)
      .catch(() => {});
  }
}

/** A fixed-window limiter whose counts are shared through a {@link RateCounterStore}. */
export class SharedRateLimiter {
  private readonly fallback: RateLimiter;

  constructor(
    private readonly store: RateCounterStore,
    readonly limit: number,
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.fallback = new RateLimiter(limit, windowMs, now);
  }

  async hit(key: string): Promise<RateDecision> {
    const t = this.now();
    const counted = await this.store.count(key, t);
    if (!counted) return this.fallback.hit(key);
    return {
      allowed: counted.count <= this.limit,
      limit: this.limit,
      remaining: Math.max(0, this.limit - counted.count),
      resetS: Math.max(1, Math.ceil((counted.start + this.windowMs - t) / 1000)),
    };
  }
}

/**
 * Failed sign-ins counted in `rate_limits` (keys of their own, a 15-minute window), with the rule
 * of the in-memory {@link FailureBudget}: an attempt reserves one failure on every key before the
 * password check and is refunded when the password was right. A reservation that finds a key
 * over its budget is taken back at once and refused.
 */
export class SharedFailureBudget {
  private readonly fallback: FailureBudget;

  constructor(
    private readonly store: RateCounterStore,
    private readonly windowMs = 15 * 60_000,
    private readonly now: () => number = Date.now,
  ) {
    this.fallback = new FailureBudget(windowMs, now);
  }

  async reserve(
    rules: FailureRule[],
  ): Promise<{ ok: true; refund: () => void } | { ok: false; rule: FailureRule; resetS: number }> {
    const t = this.now();
    const keys = rules.map((r) => r.key);
    const counted = await Promise.all(keys.map((k) => this.store.count(k, t)));
    if (counted.some((c) => !c)) {
      await this.store.uncount(keys.filter((_, i) => counted[i]));
      return this.fallback.reserve(rules);
    }
    const over = rules.findIndex((r, i) => counted[i]!.count > r.limit);
    if (over >= 0) {
      await this.store.uncount(keys);
      return {
        ok: false,
        rule: rules[over]!,
        resetS: Math.max(1, Math.ceil((counted[over]!.start + this.windowMs - t) / 1000)),
      };
    }
    let refunded = false;
    return {
      ok: true,
      refund: () => {
        if (refunded) return;
        refunded = true;
        void this.store.uncount(keys);
      },
    };
  }
}
