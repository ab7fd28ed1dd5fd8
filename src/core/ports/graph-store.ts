/**
 * The `GraphStore` port: the knowledge graph of each user: entities, relations between them, and
 * mentions (which memory talks about which entity). Adapters: `src/vps/graph/postgres/` (default,
 * recursive-CTE traversal) and `src/vps/graph/neo4j/` (when `NEO4J_URL` is set). One contract suite,
 * `tests/contract/graph-store.contract.ts`, runs against every adapter.
 *
 * Invariants:
 * - Everything is scoped by `userId`: one user's query never sees another user's entities,
 *   relations or memories.
 * - An entity is identified by its normalised name within a user (NFKC, lower case, accents,
 *   surrounding punctuation, a possessive "'s" and repeated spaces removed), so lookups are
 *   case-insensitive. Its `type` is the most specific one seen (person, place or organization
 *   win over topic; between those the first one seen stays).
 * - `upsertMemory` replaces the memory's previous mentions and relations: calling it twice with
 *   the same extraction leaves the graph as after one call.
 * - An entity that no memory mentions any more is removed, with its relations.
 * - An unknown entity is not an error: `query` answers empty lists.
 */
import type { EntityType, Extraction } from "./entity-extractor.ts";

/** The entities and relations extracted from one memory, for `upsertMemory`. */
export interface MemoryGraph extends Extraction {
  userId: string;
  memoryId: string;
}

/** A traversal request. `depth` is 1..3 hops from the entity; `limit` (1..100) caps both the
 * nodes and the memories answered. */
export interface GraphQuery {
  userId: string;
  entity: string;
  depth: number;
  limit: number;
}

export interface GraphNode {
  /** The store's id for the entity (opaque). */
  id: string;
  /** The name as first written. */
  name: string;
  type: EntityType;
  /** Hops from the queried entity: 0 for the entity itself. */
  depth: number;
  /** How many memories mention it. */
  mentions: number;
}

/** A relation between two returned nodes; `weight` is how many memories support it. */
export interface GraphEdge {
  from: string;
  to: string;
  type: string;
  weight: number;
}

/** A memory that mentions returned nodes, with the ids of those nodes. */
export interface GraphMemoryRef {
  memory_id: string;
  entities: string[];
}

/**
 * Nodes ordered by depth, then by mentions (most first), then by name (code-point order); edges
 * only between returned nodes; memories: among the `limit` newest memories of each returned node,
 * those that mention the most returned nodes, then the newest (highest UUIDv7) first.
 */
export interface GraphResult {
  nodes: GraphNode[];
  edges: GraphEdge[];
  memories: GraphMemoryRef[];
}

export interface GraphStore {
  /** Adapter name: `postgres` or `neo4j`. */
  readonly kind: string;
  /** Replaces the memory's entities, relations and mentions with these. An extraction with no
   * entities is the same as `removeMemory`. */
  upsertMemory(graph: MemoryGraph): Promise<void>;
  /** Removes the memory's mentions and relations (for example when it becomes a tombstone). */
  removeMemory(userId: string, memoryId: string): Promise<void>;
  /** Removes everything of the user: entities, relations, mentions (when the user is deleted).
   * Idempotent; other users are untouched. */
  removeUser(userId: string): Promise<void>;
  /** Traverses from `entity` up to `depth` hops. Depth outside 1..3 or a limit outside 1..100 is
   * `DionysusError("invalid_input")`; an unknown entity answers empty lists. */
  query(query: GraphQuery): Promise<GraphResult>;
  /** Releases connections the store opened itself (a store given a database handle leaves it). */
  close(): Promise<void>;
}
