/**
 * What the VPS status page reads, every query scoped to the signed-in user: their devices with
 * their sync state, how many memories they have, and their job queue.
 */
import { type Kysely, sql } from "kysely";
import type { VpsTables } from "../../db/schema.ts";

export interface PageDevice {
  device_id: string;
  device_name: string | null;
  platform: string | null;
  created_at: string;
  last_seen: string | null;
  revoked_at: string | null;
  /** Writes of this device the VPS has applied (its last mutation number). */
  last_mutation_id: number;
}

export interface PageJobs {
  counts: Array<{ kind: string; status: string; n: number }>;
  failed: Array<{ id: string; kind: string; error: string | null; finished_at: string | null }>;
}

const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

export async function userDevices(db: Kysely<VpsTables>, userId: string): Promise<PageDevice[]> {
  const rows = await db
    .selectFrom("devices")
    .select([
      "device_id",
      "device_name",
      "platform",
      "created_at",
      "last_seen",
      "revoked_at",
      "last_mutation_id",
    ])
    .where("user_id", "=", userId)
    .orderBy("revoked_at", (o) => o.desc().nullsFirst())
    .orderBy("created_at")
    .execute();
  return rows.map((r) => ({
    ...r,
    created_at: r.created_at.toISOString(),
    last_seen: isoOrNull(r.last_seen),
    revoked_at: isoOrNull(r.revoked_at),
    last_mutation_id: Number(r.last_mutation_id),
  }));
}

export async function userMemoryCount(db: Kysely<VpsTables>, userId: string): Promise<number> {
  const r = await db
    .selectFrom("memories")
    .select((eb) => eb.fn.countAll<string>().as("n"))
    .where("user_id", "=", userId)
    .where("deleted", "=", false)
    .executeTakeFirst();
  return Number(r?.n ?? 0);
}

export async function userJobs(db: Kysely<VpsTables>, userId: string): Promise<PageJobs> {
  const counts = await sql<{ kind: string; status: string; n: string | number }>`
    select kind, status, count(*) as n from jobs where user_id = ${userId}
    group by kind, status order by kind, status`.execute(db);
  const failed = await db
    .selectFrom("jobs")
    .select(["id", "kind", "error", "finished_at"])
    .where("user_id", "=", userId)
    .where("status", "=", "failed")
    .orderBy("finished_at", "desc")
    .limit(10)
    .execute();
  return {
    counts: counts.rows.map((r) => ({ ...r, n: Number(r.n) })),
    failed: failed.map((f) => ({ ...f, finished_at: isoOrNull(f.finished_at) })),
  };
}
