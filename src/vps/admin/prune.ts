/**
 * Scheduled pruning of the VPS database (`prune_interval_s`): conflict-log entries older than
 * `conflict_retention_days`, access and refresh tokens past their expiry (a refresh token is kept
 * until then even once used, so that its reuse is still caught), device codes past their expiry,
 * and failed jobs older than `failed_job_retention_days`. Each run is one statement per table and
 * is logged with its counts and duration.
 */
import type { Kysely } from "kysely";
import type { VpsTables } from "../db/schema.ts";

export interface PruneOptions {
  conflictRetentionDays: number;
  failedJobRetentionDays: number;
  now?: () => number;
}

export interface PruneCounts {
  conflicts: number;
  tokens: number;
  device_codes: number;
  failed_jobs: number;
  ms: number;
}

const DAY_MS = 86_400_000;

export async function pruneVps(db: Kysely<VpsTables>, opts: PruneOptions): Promise<PruneCounts> {
  const started = performance.now();
  const now = new Date((opts.now ?? Date.now)());
  const days = (n: number) => new Date(now.getTime() - n * DAY_MS);
  const n = (r: { numDeletedRows: bigint }) => Number(r.numDeletedRows);
  const conflicts = n(
    await db
      .deleteFrom("conflicts")
      .where("resolved_at", "<", days(opts.conflictRetentionDays))
      .executeTakeFirst(),
  );
  const tokens = n(await db.deleteFrom("auth_tokens").where("expires_at", "<", now).executeTakeFirst());
  const device_codes = n(
    await db.deleteFrom("device_codes").where("expires_at", "<", now).executeTakeFirst(),
  );
  const failed_jobs = n(
    await db
      .deleteFrom("jobs")
      .where("status", "=", "failed")
      .where("finished_at", "<", days(opts.failedJobRetentionDays))
      .executeTakeFirst(),
  );
  return { conflicts, tokens, device_codes, failed_jobs, ms: Math.round(performance.now() - started) };
}
