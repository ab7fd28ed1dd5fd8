/** Row shapes of the edge database and their conversion to the core model. */
import type { LocalMemory, Memory, MemoryKind } from "../../../core/memory.ts";
import type { MemoryData } from "../../../core/protocol/sync.ts";
import type { QueueItem, QueueStatus } from "../types.ts";

export interface MemoryRow {
  rid: number;
  id: string;
  content: string;
  kind: string;
  tags: string;
  metadata: string;
  embedding: string | null;
  created_at: string;
  updated_at: string;
  hlc: string;
  base_hlc: string | null;
  deleted: number;
  origin_device: string;
  origin: string;
  scope: string | null;
  source: string;
  occurred_at: string | null;
  private: number;
  synced_at: string | null;
  last_accessed_at: string | null;
}

export interface QueueRow {
  mutation_id: number;
  memory_id: string;
  op: "create" | "update" | "delete";
  hlc: string;
  base_hlc: string | null;
  payload: string | null;
  status: QueueStatus;
  retry_count: number;
  next_attempt_at: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
}

export const MEMORY_COLUMNS =
  "rid, id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc, base_hlc, deleted, origin_device, origin, scope, source, occurred_at, private, synced_at, last_accessed_at";

export function toMemory(r: MemoryRow): Memory {
  return {
    id: r.id,
    content: r.content,
    kind: r.kind as MemoryKind,
    tags: JSON.parse(r.tags) as string[],
    metadata: JSON.parse(r.metadata) as Record<string, unknown>,
    embedding: r.embedding === null ? null : (JSON.parse(r.embedding) as number[]),
    created_at: r.created_at,
    updated_at: r.updated_at,
    hlc: r.hlc,
    deleted: r.deleted === 1,
    origin_device: r.origin_device,
    scope: r.scope,
    source: r.source,
    occurred_at: r.occurred_at,
  };
}

export function toLocalMemory(r: MemoryRow): LocalMemory {
  return {
    ...toMemory(r),
    origin: r.origin as LocalMemory["origin"],
    private: r.private === 1,
    synced_at: r.synced_at,
    last_accessed_at: r.last_accessed_at,
  };
}

export function toMemoryData(m: Memory): MemoryData {
  return {
    content: m.content,
    kind: m.kind,
    tags: m.tags,
    metadata: m.metadata,
    created_at: m.created_at,
    updated_at: m.updated_at,
    scope: m.scope,
    source: m.source,
    occurred_at: m.occurred_at,
  };
}

export function toQueueItem(r: QueueRow): QueueItem {
  return {
    mutation_id: r.mutation_id,
    memory_id: r.memory_id,
    op: r.op,
    status: r.status,
    retry_count: r.retry_count,
    next_attempt_at: r.next_attempt_at === null ? null : new Date(r.next_attempt_at).toISOString(),
    last_error: r.last_error,
    created_at: r.created_at,
  };
}

/** Whether two versions of a memory carry the same user-visible state. */
export function sameState(a: Memory, b: Memory): boolean {
  if (a.deleted && b.deleted) return true;
  return (
    a.deleted === b.deleted &&
    a.content === b.content &&
    a.kind === b.kind &&
    JSON.stringify(a.tags) === JSON.stringify(b.tags) &&
    JSON.stringify(a.metadata) === JSON.stringify(b.metadata) &&
    a.scope === b.scope &&
    a.occurred_at === b.occurred_at
  );
}
