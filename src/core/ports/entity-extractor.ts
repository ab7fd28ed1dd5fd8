/**
 * The `EntityExtractor` port: finds the entities a memory talks about and how they relate, to
 * build the knowledge graph. Adapters: `src/vps/graph/extract/` (local, with the `compromise` NLP
 * library) and, when an LLM is configured, one that asks the LLM.
 *
 * Invariants: the local extractor is deterministic for a given text and version (an LLM need not
 * be); entity names are returned as written in the text (normalisation is the graph store's
 * job); every relation's `from` and `to` are names of entities in the same answer; no entity
 * appears twice (same normalised name).
 */

/** What an entity is. `topic` covers salient things and ideas that are not people, places or
 * organisations ("coffee", "the garden project"). */
export type EntityType = "person" | "place" | "organization" | "topic";

export interface ExtractedEntity {
  /** The name as written, for example "Ana Lima". */
  name: string;
  type: EntityType;
}

export interface ExtractedRelation {
  /** Name of an entity of the same extraction. */
  from: string;
  /** Name of an entity of the same extraction. */
  to: string;
  /** Relation type in snake_case; the local extractor only produces `co_occurs`. */
  type: string;
}

export interface Extraction {
  entities: ExtractedEntity[];
  relations: ExtractedRelation[];
}

export interface EntityExtractor {
  /** Stable name and version of the extractor, for example `compromise-v1`. */
  readonly id: string;
  /** Entities and relations of one text. An empty or entity-less text answers empty lists. */
  extract(text: string): Promise<Extraction>;
}
