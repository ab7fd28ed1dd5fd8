/**
 * `embed` jobs: a vector for each memory's current content. A memory whose stored vector already
 * matches its content (a tags-only edit) costs one lookup; a deleted memory loses its vectors.
 *
 * A new vector changes what the change feed carries for the memory (`embedding`), so it takes a
 * new seq in the user's feed, under the user's row lock like any write, and pokes the devices.
 * The memory's version (`hlc`) does not change: a device stores the vector without treating it as
 * a content change, and no conflict can come of it. A vector computed for content that changed
 * meanwhile is dropped (the newer write queued its own job).
 */
import { type Kysely, sql } from "kysely";
import type { Embedder } from "../../core/ports/embedder.ts";
import { CHANGES_CHANNEL } from "../db/channel.ts";
import { currentVectors } from "../db/memories.ts";
import type { VpsTables } from "../db/schema.ts";
import { vectorToBytes } from "../db/vector-bytes.ts";

/** A vector describes the first this many characters of a memory (the built-in embedder runs on
 * the server's event loop; Ollama's models have shorter contexts anyway). */
export const MAX_EMBED_CHARS = 32_000;

export interface EmbedTarget {
  user_id: string;
  memory_id: string;
}

/** Extra work done in the same transaction whenever vectors are written (the pgvector column). */
export interface VectorSink {
  afterWrite?(tx: Kysely<VpsTables>, userId: string, memoryIds: string[]): Promise<void>;
}

const hex = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** Embeds the targets (any users); returns how many vectors were written. */
export async function processEmbedJobs(
  db: Kysely<VpsTables>,
  embedder: Embedder,
  targets: readonly EmbedTarget[],
  sink: VectorSink | undefined = undefined,
): Promise<number> {
  const byUser = new Map<string, string[]>();
  for (const t of targets) {
    const list = byUser.get(t.user_id) ?? [];
    list.push(t.memory_id);
    byUser.set(t.user_id, list);
  }
  let written = 0;
  for (const [userId, ids] of byUser) written += await embedForUser(db, embedder, userId, ids, sink ?? {});
  return written;
}

async function embedForUser(
  db: Kysely<VpsTables>,
  embedder: Embedder,
  userId: string,
  ids: string[],
  sink: VectorSink,
): Promise<number> {
  const rows = await sql<{ id: string; content: string; deleted: boolean; hash: string }>`
    select id, content, deleted, md5(content) as hash from memories
    where user_id = ${userId} and id = any(${ids}::text[])`.execute(db);
  const live = rows.rows.filter((r) => !r.deleted);
  const liveIds = new Set(live.map((r) => r.id));
  const gone = ids.filter((id) => !liveIds.has(id));
  if (gone.length > 0)
    await sql`delete from embeddings where user_id = ${userId} and memory_id = any(${gone}::text[])`.execute(
      db,
    );
  // Memories whose stored vector is still current need nothing (a tags-only edit).
  const have = await currentVectors(db, userId, embedder.id, live);
  const todo = live.filter((r) => !have.has(r.id));
  if (todo.length === 0) return 0;
  const vectors = await embedder.embed(todo.map((r) => r.content.slice(0, MAX_EMBED_CHARS)));
  const dims = vectors[0]?.length ?? 0;
  return db.transaction().execute(async (tx) => {
    // Lock the memories first, as a push does, then the user's row (in the write below).
    const current = await sql<{ id: string; hash: string }>`
      select id, md5(content) as hash from memories
      where user_id = ${userId} and id = any(${todo.map((t) => t.id)}::text[]) and not deleted
      order by id
      for update`.execute(tx);
    const hashNow = new Map(current.rows.map((r) => [r.id, r.hash]));
    const fresh = todo
      .map((t, i) => ({ t, v: vectors[i]! }))
      .filter(({ t }) => hashNow.get(t.id) === t.hash)
      .map(({ t, v }, i) => ({ ord: i + 1, id: t.id, hash: t.hash, vec: hex(vectorToBytes(v)) }));
    const n = fresh.length;
    if (n === 0) return 0;
    await sql`
      with u as (
        update users set seq = seq + ${n} where id = ${userId}
        returning seq, pg_notify(${CHANGES_CHANNEL}, json_build_object('type', 'changes', 'user_id', id, 'seq', seq)::text)
      ), r as (
        select x.id, x.hash, decode(x.vec, 'hex') as vector, (select seq from u) - ${n} + x.ord as new_seq
        from jsonb_to_recordset(${JSON.stringify(fresh)}::jsonb) as x(ord int, id text, hash text, vec text)
      ), e as (
        insert into embeddings (user_id, memory_id, model, content_hash, dims, vector)
        select ${userId}, r.id, ${embedder.id}, r.hash, ${dims}, r.vector from r
        on conflict (user_id, memory_id, model) do update set content_hash = excluded.content_hash,
          dims = excluded.dims, vector = excluded.vector, created_at = now()
        returning 1
      ), m as (
        update memories set seq = r.new_seq, server_updated_at = now()
        from r where memories.user_id = ${userId} and memories.id = r.id
        returning 1
      )
      select (select seq from u) as seq, (select count(*) from e) as n_e, (select count(*) from m) as n_m`.execute(
      tx,
    );
    await sink.afterWrite?.(
      tx,
      userId,
      fresh.map((f) => f.id),
    );
    return n;
  });
}
