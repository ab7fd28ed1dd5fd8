/**
 * Writes made by the VPS itself (consolidation: merged survivors, tombstones, summaries) go into
 * the user's change feed exactly like a device's push: a seq range taken under the user's row
 * lock (so the feed stays commit-ordered), the upsert, the background jobs for the new versions,
 * and a poke to every device, delivered at commit. Their `origin_device` is {@link VPS_DEVICE}
 * and their stamps come from the VPS's own hybrid logical clock.
 */
import { type RawBuilder, sql, type Transaction } from "kysely";
import type { Memory } from "../../core/memory.ts";
import { CHANGES_CHANNEL } from "../db/channel.ts";
import type { VpsTables } from "../db/schema.ts";

/** `origin_device` and HLC node of versions the VPS writes. */
export const VPS_DEVICE = "vps";

/** A version to write, with the stamp of the version it replaces (null for a new memory). */
export interface ServerVersion extends Memory {
  base_hlc: string | null;
}

/**
 * Writes `versions` (in feed order) inside `tx`. The caller has locked the memories it replaces
 * (`FOR UPDATE`) and checked them, so these writes are the winners. Returns the user's seq after
 * the write, or undefined when there was nothing to write.
 */
export async function writeServerVersions(
  tx: Transaction<VpsTables>,
  userId: string,
  versions: readonly ServerVersion[],
): Promise<number | undefined> {
  const n = versions.length;
  if (n === 0) return undefined;
  const rowsJson = JSON.stringify(
    versions.map((v, i) => ({
      ord: i + 1,
      id: v.id,
      content: v.content,
      kind: v.kind,
      tags: v.tags,
      metadata: v.metadata,
      created_at: v.created_at,
      updated_at: v.updated_at,
      hlc: v.hlc,
      base_hlc: v.base_hlc,
      deleted: v.deleted,
      origin_device: v.origin_device,
      scope: v.scope,
      source: v.source,
      occurred_at: v.occurred_at,
    })),
  );
  const r = await sql<{ seq: number | string }>`
    with ${memoryWriteCtes(userId, n, rowsJson)}
    select (select seq from u) as seq, (select count(*) from ins) as n_ins, (select count(*) from j) as n_j`.execute(
    tx,
  );
  const seq = r.rows[0]?.seq;
  return seq == null ? undefined : Number(seq);
}

/**
 * The common-table expressions shared by every write to the change feed (a device's push and
 * the VPS's own writes): `u` takes the seq range `n` under the user's row lock and pokes the
 * devices at commit, `r` numbers the rows of `rowsJson` (objects with `ord` 1..n and the memory
 * columns plus `base_hlc`), `ins` upserts them, `j` queues their background jobs. With `n` = 0
 * nothing is written. Follow with more CTEs or the final `select`.
 */
export function memoryWriteCtes(userId: string, n: number, rowsJson: string): RawBuilder<unknown> {
  return sql`u as (
      update users set seq = seq + ${n} where id = ${userId} and ${n}::int > 0
      returning seq, pg_notify(${CHANGES_CHANNEL}, json_build_object('type', 'changes', 'user_id', id, 'seq', seq)::text)
    ), r as (
      select x.*, (select seq from u) - ${n} + x.ord as new_seq
      from jsonb_to_recordset(${rowsJson}::jsonb) as x(
        ord int, id text, content text, kind text, tags jsonb, metadata jsonb, created_at text,
        updated_at text, hlc text, base_hlc text, deleted boolean, origin_device text, scope text,
        source text, occurred_at text)
    ), ins as (
      insert into memories (user_id, id, content, kind, tags, metadata, embedding, created_at,
        updated_at, hlc, base_hlc, deleted, origin_device, scope, source, occurred_at, seq, server_updated_at)
      select ${userId}, id, content, kind, tags, metadata, null, created_at, updated_at, hlc,
        base_hlc, deleted, origin_device, scope, coalesce(source, 'unknown'), occurred_at, new_seq, now()
      from r where new_seq is not null
      on conflict (user_id, id) do update set content = excluded.content, kind = excluded.kind,
        tags = excluded.tags, metadata = excluded.metadata, embedding = null,
        created_at = excluded.created_at, updated_at = excluded.updated_at, hlc = excluded.hlc,
        base_hlc = excluded.base_hlc, deleted = excluded.deleted, origin_device = excluded.origin_device,
        scope = excluded.scope, source = excluded.source, occurred_at = excluded.occurred_at, seq = excluded.seq, server_updated_at = excluded.server_updated_at
      returning 1
    ), j as (
      -- Embedding and graph extraction happen in the background (src/vps/jobs); one queued
      -- job per memory and kind, however many writes come before a worker takes it.
      insert into jobs (user_id, id, kind, memory_id)
      select ${userId}, gen_random_uuid()::text, k.kind, r.id
      from r cross join (values ('embed'), ('extract')) as k (kind)
      where r.new_seq is not null
      on conflict (user_id, kind, memory_id) where status = 'queued' do nothing
      returning 1
    )`;
}
