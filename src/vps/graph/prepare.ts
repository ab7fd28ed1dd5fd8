/**
 * Checks and normalises what the graph stores receive, so that every adapter applies the same
 * rules (one entity per normalised name, the most specific type, relations only between entities
 * of the same memory, depth 1..3 and limit 1..100).
 */
import { DionysusError } from "../../core/errors.ts";
import type { EntityType } from "../../core/ports/entity-extractor.ts";
import type { GraphQuery, MemoryGraph } from "../../core/ports/graph-store.ts";
import { MAX_GRAPH_DEPTH } from "../../core/protocol/heavy.ts";
import { isUuid } from "../../core/uuid.ts";
import { normalizeEntityName } from "./normalize.ts";

export interface PreparedEntity {
  name: string;
  norm: string;
  type: EntityType;
}

/** A relation between two prepared entities, by normalised name. */
export interface PreparedRelation {
  from: string;
  to: string;
  type: string;
}

export interface PreparedGraph {
  userId: string;
  memoryId: string;
  /** Sorted by `norm` (a fixed lock order for concurrent writers). */
  entities: PreparedEntity[];
  /** Sorted by from, to, type. */
  relations: PreparedRelation[];
}

const ENTITY_TYPES: ReadonlySet<string> = new Set(["person", "place", "organization", "topic"]);
/** Longest entity name kept, in characters. */
export const MAX_ENTITY_NAME = 200;

export function checkUser(userId: string): string {
  if (typeof userId !== "string" || userId.length === 0 || userId.length > 128) {
    throw new DionysusError("invalid_input", "userId must be a non-empty string of at most 128 characters");
  }
  return userId;
}

export function checkMemoryId(memoryId: string): string {
  if (!isUuid(memoryId)) throw new DionysusError("invalid_input", `memory id is not a UUID: ${memoryId}`);
  return memoryId.toLowerCase();
}

/** A relation type in snake_case, at most 64 characters; anything else becomes `related_to`. */
function relationType(type: string): string {
  const t = type
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "");
  return /^[a-z][a-z0-9_]{0,63}$/.test(t) ? t : "related_to";
}

export function prepareMemoryGraph(graph: MemoryGraph): PreparedGraph {
  const userId = checkUser(graph.userId);
  const memoryId = checkMemoryId(graph.memoryId);
  const byNorm = new Map<string, PreparedEntity>();
  for (const e of graph.entities) {
    const name = e.name.trim().slice(0, MAX_ENTITY_NAME);
    const norm = normalizeEntityName(name);
    if (!norm) continue;
    if (!ENTITY_TYPES.has(e.type)) throw new DionysusError("invalid_input", `unknown entity type: ${e.type}`);
    const known = byNorm.get(norm);
    if (!known) byNorm.set(norm, { name, norm, type: e.type });
    else if (known.type === "topic" && e.type !== "topic") known.type = e.type;
  }
  const relations = new Map<string, PreparedRelation>();
  for (const r of graph.relations) {
    const from = normalizeEntityName(r.from.trim().slice(0, MAX_ENTITY_NAME));
    const to = normalizeEntityName(r.to.trim().slice(0, MAX_ENTITY_NAME));
    // Relations must join two distinct entities of this memory; others are dropped.
    if (from === to || !byNorm.has(from) || !byNorm.has(to)) continue;
    const type = relationType(r.type);
    relations.set(`${from}\u0000${to}\u0000${type}`, { from, to, type });
  }
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return {
    userId,
    memoryId,
    entities: [...byNorm.values()].sort((a, b) => cmp(a.norm, b.norm)),
    relations: [...relations.values()].sort(
      (a, b) => cmp(a.from, b.from) || cmp(a.to, b.to) || cmp(a.type, b.type),
    ),
  };
}

export interface PreparedQuery {
  userId: string;
  norm: string;
  depth: number;
  limit: number;
}

export function prepareQuery(q: GraphQuery): PreparedQuery {
  const userId = checkUser(q.userId);
  if (!Number.isInteger(q.depth) || q.depth < 1 || q.depth > MAX_GRAPH_DEPTH) {
    throw new DionysusError("invalid_input", `depth must be 1..${MAX_GRAPH_DEPTH}`, {
      details: { depth: q.depth },
    });
  }
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > 100) {
    throw new DionysusError("invalid_input", "limit must be 1..100", { details: { limit: q.limit } });
  }
  return { userId, norm: normalizeEntityName(String(q.entity ?? "")), depth: q.depth, limit: q.limit };
}
