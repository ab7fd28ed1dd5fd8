/**
 * The NOTIFY channel shared by every VPS instance on one database: change pokes and device
 * revocations travel through it, so a device connected to instance 1 hears about a write on
 * instance 2. Sent inside the writing transaction, a notification is delivered at commit.
 */
import { type Kysely, sql, type Transaction } from "kysely";
import { Job } from "../../core/protocol/heavy.ts";
import type { VpsTables } from "./schema.ts";

export const CHANGES_CHANNEL = "dionysus_changes";

/** Payload on {@link CHANGES_CHANNEL}. */
export type ChannelEvent =
  | { type: "changes"; user_id: string; seq: number }
  | { type: "revoke"; user_id: string; device_id: string }
  | { type: "job"; user_id: string; job: Job }
  /** New background work that no change poke announces (a consolidation): job workers wake. */
  | { type: "wake" };

export async function notifyChannel(
  tx: Kysely<VpsTables> | Transaction<VpsTables>,
  ev: ChannelEvent,
): Promise<void> {
  await sql`select pg_notify(${CHANGES_CHANNEL}, ${JSON.stringify(ev)})`.execute(tx);
}

/** Parses a payload; undefined for anything unexpected. */
export function parseChannelEvent(payload: string): ChannelEvent | undefined {
  try {
    const v = JSON.parse(payload) as Partial<Record<string, unknown>>;
    if (v.type === "changes" && typeof v.user_id === "string" && typeof v.seq === "number")
      return { type: "changes", user_id: v.user_id, seq: v.seq };
    if (v.type === "revoke" && typeof v.user_id === "string" && typeof v.device_id === "string")
      return { type: "revoke", user_id: v.user_id, device_id: v.device_id };
    if (v.type === "wake") return { type: "wake" };
    if (v.type === "job" && typeof v.user_id === "string") {
      const job = Job.safeParse(v.job);
      if (job.success) return { type: "job", user_id: v.user_id, job: job.data };
    }
  } catch {}
  return undefined;
}
