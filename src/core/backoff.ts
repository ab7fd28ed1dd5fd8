/**
 * Retry schedule of the sync engine (docs/sync.md "When the engine tries"): 10 s, 60 s, 300 s, then 300 s for ever, each with
 * ±20 % jitter so that many devices coming back at once do not retry in lockstep. A server's
 * Retry-After (429, 503) wins over the schedule.
 */
export const BACKOFF_STEPS_MS = [10_000, 60_000, 300_000] as const;
export const JITTER = 0.2;

/** Delay before retry number `attempt` (1-based: the first retry after one failure). */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const i = Math.min(Math.max(attempt, 1), BACKOFF_STEPS_MS.length) - 1;
  const base = BACKOFF_STEPS_MS[i]!;
  return Math.round(base * (1 - JITTER + 2 * JITTER * random()));
}

/** Parses a Retry-After header (seconds or HTTP date) into ms from `now`; undefined if absent or bad. */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Delay for the reconnect of a realtime stream: 1 s doubling to 30 s, full jitter. */
export function reconnectDelay(attempt: number, random: () => number = Math.random): number {
  const cap = Math.min(30_000, 1000 * 2 ** Math.max(0, attempt - 1));
  return Math.round(cap / 2 + (cap / 2) * random());
}
