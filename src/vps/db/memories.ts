/**
 * Rows of `memories` as the VPS reads them: the columns to select, the conversion to the protocol's
 * `Memory` and `Change`, and the stored vectors that are current for a memory's content. Sync,
 * search, graph queries, consolidation, the embed jobs and the vector index all read through these.
 */
import { type Kysely, sql, type Transaction } from "kysely";
import type { Memory } from "../../core/memory.ts";
import type { Change } from "../../core/protocol/sync.ts";
import type { MemoryRow, VpsTables } from "./schema.ts";

/** Every column of `memories` but the search vector, for SQL and for kysely selects. */
export const MEMORY_FIELDS = [
  "user_id",
  "id",
  "content",
  "kind",
  "tags",
  "metadata",
  "embedding",
  "created_at",
  "updated_at",
  "hlc",
  "base_hlc",
  "deleted",
  "origin_device",
  "scope",
  "source",
  "occurred_at",
  "seq",
  "server_updated_at",
] as const;
export const MEMORY_COLUMNS = sql.raw(MEMORY_FIELDS.join(", "));

/**
 * The stored vectors by `model` of `memories` that are current: made from the memory's content as
 * it is now (`hash`, the md5 of the content). One primary-key lookup for the whole list.
 */
export async function currentVectors(
  db: Kysely<VpsTables> | Transaction<VpsTables>,
  userId: string,
  model: string | undefined,
  memories: ReadonlyArray<{ id: string; hash: string }>,
): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  if (!model || memories.length === 0) return out;
  const r = await sql<{ memory_id: string; content_hash: string; vector: Uint8Array }>`
    select memory_id, content_hash, vector from embeddings
    where user_id = ${userId} and model = ${model} and memory_id = any(${memories.map((m) => m.id)}::text[])`.execute(
    db,
  );
  const want = new Map(memories.map((m) => [m.id, m.hash]));
  for (const row of r.rows)
    if (want.get(row.memory_id) === row.content_hash) out.set(row.memory_id, row.vector);
  return out;
}

export const rowToMemory = (r: MemoryRow): Memory => ({
  id: r.id,
  content: r.content,
  kind: r.kind as Memory["kind"],
  tags: r.tags,
  metadata: r.metadata,
  ...(r.embedding ? { embedding: r.embedding } : {}),
  created_at: r.created_at,
  updated_at: r.updated_at,
  hlc: r.hlc,
  deleted: r.deleted,
  origin_device: r.origin_device,
  scope: r.scope,
  source: r.source,
  occurred_at: r.occurred_at,
});

/** A memories row as `row_to_json` renders it. */
export type MemoryJson = Omit<MemoryRow, "seq" | "server_updated_at"> & {
  seq: number | string;
  server_updated_at: string;
};

export const jsonToMemory = (r: MemoryJson): Memory =>
  rowToMemory({ ...r, seq: Number(r.seq), server_updated_at: new Date(r.server_updated_at) });

export const rowToChange = (r: MemoryRow): Change => ({
  ...rowToMemory(r),
  seq: r.seq,
  base_hlc: r.base_hlc,
});
