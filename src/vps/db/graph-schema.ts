/**
 * Tables of the Postgres graph store. Every table is keyed by `user_id` first (see ./schema.ts).
 * `graph_relations` holds one row per distinct relation with `weight` = how many memories support
 * it; `graph_relation_sources` records which memory supports which relation, so that re-extracting
 * or deleting a memory can take back exactly its own contribution.
 */
import { type Migration, sql } from "kysely";

export interface GraphEntitiesTable {
  user_id: string;
  id: string;
  /** The name as first written. */
  name: string;
  /** See `normalizeEntityName`; unique per user. */
  norm_name: string;
  type: "person" | "place" | "organization" | "topic";
  /** How many memories mention the entity (kept by the store). */
  mentions: number;
}

export interface GraphRelationsTable {
  user_id: string;
  from_id: string;
  to_id: string;
  type: string;
  weight: number;
}

export interface GraphRelationSourcesTable {
  user_id: string;
  memory_id: string;
  from_id: string;
  to_id: string;
  type: string;
}

export interface GraphMentionsTable {
  user_id: string;
  memory_id: string;
  entity_id: string;
}

/** The kysely table types of the graph store; the VPS database type includes them. */
export interface GraphTables {
  graph_entities: GraphEntitiesTable;
  graph_relations: GraphRelationsTable;
  graph_relation_sources: GraphRelationSourcesTable;
  graph_mentions: GraphMentionsTable;
}

/**
 * The graph tables' migration, for the VPS migrator. Plain SQL that runs on PostgreSQL 14+ and
 * PGlite. `user_id` is `text` so it fits whatever the VPS uses for user ids.
 */
export const graphMigration: Migration = {
  async up(db) {
    await sql`
      CREATE TABLE graph_entities (
        user_id text NOT NULL,
        id uuid NOT NULL,
        name text NOT NULL,
        norm_name text NOT NULL,
        type text NOT NULL CHECK (type IN ('person', 'place', 'organization', 'topic')),
        mentions integer NOT NULL DEFAULT 0,
        PRIMARY KEY (user_id, id),
        UNIQUE (user_id, norm_name)
      )`.execute(db);
    await sql`
      CREATE TABLE graph_mentions (
        user_id text NOT NULL,
        memory_id uuid NOT NULL,
        entity_id uuid NOT NULL,
        PRIMARY KEY (user_id, memory_id, entity_id),
        FOREIGN KEY (user_id, entity_id) REFERENCES graph_entities (user_id, id) ON DELETE CASCADE
      )`.execute(db);
    await sql`CREATE INDEX graph_mentions_entity ON graph_mentions (user_id, entity_id, memory_id)`.execute(
      db,
    );
    await sql`
      CREATE TABLE graph_relations (
        user_id text NOT NULL,
        from_id uuid NOT NULL,
        to_id uuid NOT NULL,
        type text NOT NULL,
        weight integer NOT NULL,
        PRIMARY KEY (user_id, from_id, to_id, type),
        FOREIGN KEY (user_id, from_id) REFERENCES graph_entities (user_id, id) ON DELETE CASCADE,
        FOREIGN KEY (user_id, to_id) REFERENCES graph_entities (user_id, id) ON DELETE CASCADE
      )`.execute(db);
    await sql`CREATE INDEX graph_relations_to ON graph_relations (user_id, to_id, from_id)`.execute(db);
    await sql`
      CREATE TABLE graph_relation_sources (
        user_id text NOT NULL,
        memory_id uuid NOT NULL,
        from_id uuid NOT NULL,
        to_id uuid NOT NULL,
        type text NOT NULL,
        PRIMARY KEY (user_id, memory_id, from_id, to_id, type),
        FOREIGN KEY (user_id, from_id, to_id, type)
          REFERENCES graph_relations (user_id, from_id, to_id, type) ON DELETE CASCADE
      )`.execute(db);
  },
  async down(db) {
    await sql`DROP TABLE IF EXISTS graph_relation_sources`.execute(db);
    await sql`DROP TABLE IF EXISTS graph_relations`.execute(db);
    await sql`DROP TABLE IF EXISTS graph_mentions`.execute(db);
    await sql`DROP TABLE IF EXISTS graph_entities`.execute(db);
  },
};
