/**
 * The default `GraphStore`: PostgreSQL (or PGlite) tables, traversed with a recursive CTE.
 *
 * Traversal walks relations in both directions from the queried entity. The recursive CTE keeps
 * (entity, depth) pairs with `UNION`, so a pair is never expanded twice, and stops at the depth
 * cap: cycles cannot loop. Each entity is then answered at its smallest depth.
 */
import { type Kysely, type RawBuilder, sql } from "kysely";
import { DionysusError, isDionysusError } from "../../../core/errors.ts";
import type { EntityType } from "../../../core/ports/entity-extractor.ts";
import type { GraphResult, GraphStore, MemoryGraph } from "../../../core/ports/graph-store.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import type { GraphTables } from "../../db/graph-schema.ts";
import { pgCode } from "../../db/pg-errors.ts";
import {
  checkMemoryId,
  checkUser,
  type PreparedGraph,
  prepareMemoryGraph,
  prepareQuery,
} from "../prepare.ts";

type Db = Kysely<GraphTables>;

/** Postgres error codes worth one more try: deadlock, serialization failure, unique violation
 * and foreign-key violation (two writers racing on the same new or orphaned entity). */
const RETRYABLE = new Set(["40P01", "40001", "23505", "23503"]);

function toStoreError(err: unknown): unknown {
  if (isDionysusError(err)) return err;
  const code = pgCode(err);
  if (code?.startsWith("08") || code === "ECONNREFUSED" || code === "57P01") {
    return new DionysusError("unavailable", "the graph database is unavailable", { cause: err });
  }
  return err;
}

/** The graph's tables, children first (the order a user's rows are deleted in). */
export const GRAPH_TABLES = [
  "graph_relation_sources",
  "graph_relations",
  "graph_mentions",
  "graph_entities",
] as const;

const uuids = (values: readonly string[]): RawBuilder<unknown> =>
  sql.join(values.map((v) => sql`${v}::uuid`));

/** Takes back everything a memory contributed: its mentions and its relation sources. */
async function takeBack(trx: Db, userId: string, memoryId: string): Promise<string[]> {
  const mentions = await sql<{ entity_id: string }>`
    DELETE FROM graph_mentions WHERE user_id = ${userId} AND memory_id = ${memoryId}::uuid
    RETURNING entity_id::text AS entity_id`.execute(trx);
  const sources = await sql<{ from_id: string; to_id: string; type: string }>`
    DELETE FROM graph_relation_sources WHERE user_id = ${userId} AND memory_id = ${memoryId}::uuid
    RETURNING from_id::text AS from_id, to_id::text AS to_id, type`.execute(trx);
  if (sources.rows.length > 0) {
    const rows = sql.join(
      sources.rows.map((r) => sql`(${r.from_id}::uuid, ${r.to_id}::uuid, ${r.type}::text)`),
    );
    await sql`
      UPDATE graph_relations r SET weight = r.weight - 1
      FROM (VALUES ${rows}) AS v (from_id, to_id, type)
      WHERE r.user_id = ${userId} AND r.from_id = v.from_id AND r.to_id = v.to_id AND r.type = v.type`.execute(
      trx,
    );
    await sql`
      DELETE FROM graph_relations r USING (VALUES ${rows}) AS v (from_id, to_id, type)
      WHERE r.user_id = ${userId} AND r.from_id = v.from_id AND r.to_id = v.to_id AND r.type = v.type
        AND r.weight <= 0`.execute(trx);
  }
  const ids = mentions.rows.map((r) => r.entity_id).sort();
  if (ids.length > 0) {
    await sql`
      UPDATE graph_entities SET mentions = mentions - 1
      WHERE user_id = ${userId} AND id IN (${uuids(ids)})`.execute(trx);
  }
  return ids;
}

/** Removes the entities among `ids` that no memory mentions any more (their relations cascade). */
async function dropOrphans(trx: Db, userId: string, ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  await sql`
    DELETE FROM graph_entities
    WHERE user_id = ${userId} AND id IN (${uuids(ids)}) AND mentions <= 0`.execute(trx);
}

async function write(trx: Db, g: PreparedGraph): Promise<void> {
  const { userId, memoryId } = g;
  const previous = await takeBack(trx, userId, memoryId);
  const idByNorm = new Map<string, string>();
  if (g.entities.length > 0) {
    const values = sql.join(
      g.entities.map((e) => sql`(${userId}, ${uuidv7()}::uuid, ${e.name}, ${e.norm}, ${e.type}, 1)`),
    );
    const rows = await sql<{ id: string; norm_name: string }>`
      INSERT INTO graph_entities (user_id, id, name, norm_name, type, mentions) VALUES ${values}
      ON CONFLICT (user_id, norm_name) DO UPDATE SET
        mentions = graph_entities.mentions + 1,
        type = CASE WHEN graph_entities.type = 'topic' THEN excluded.type ELSE graph_entities.type END
      RETURNING id::text AS id, norm_name`.execute(trx);
    for (const r of rows.rows) idByNorm.set(r.norm_name, r.id);
    const mentions = sql.join(
      g.entities.map((e) => sql`(${userId}, ${memoryId}::uuid, ${idByNorm.get(e.norm)!}::uuid)`),
    );
    await sql`INSERT INTO graph_mentions (user_id, memory_id, entity_id) VALUES ${mentions}`.execute(trx);
  }
  if (g.relations.length > 0) {
    const rels = g.relations.map((r) => ({
      from: idByNorm.get(r.from)!,
      to: idByNorm.get(r.to)!,
      type: r.type,
    }));
    await sql`
      INSERT INTO graph_relations (user_id, from_id, to_id, type, weight)
      VALUES ${sql.join(rels.map((r) => sql`(${userId}, ${r.from}::uuid, ${r.to}::uuid, ${r.type}, 1)`))}
      ON CONFLICT (user_id, from_id, to_id, type) DO UPDATE SET weight = graph_relations.weight + 1`.execute(
      trx,
    );
    await sql`
      INSERT INTO graph_relation_sources (user_id, memory_id, from_id, to_id, type)
      VALUES ${sql.join(rels.map((r) => sql`(${userId}, ${memoryId}::uuid, ${r.from}::uuid, ${r.to}::uuid, ${r.type})`))}`.execute(
      trx,
    );
  }
  const kept = new Set(idByNorm.values());
  await dropOrphans(
    trx,
    userId,
    previous.filter((id) => !kept.has(id)),
  );
}

type NodeRow = { id: string; name: string; type: EntityType; depth: number; mentions: number };

/** The entities within `depth` hops of `startId`, each at its smallest depth, nearest first. */
async function walk(
  db: Db,
  userId: string,
  startId: string,
  depth: number,
  limit: number,
): Promise<NodeRow[]> {
  const r = await sql<NodeRow>`
    WITH RECURSIVE walk (id, depth) AS (
      SELECT ${startId}::uuid, 0
      UNION
      SELECT n.id, w.depth + 1
      FROM walk w
      CROSS JOIN LATERAL (
        SELECT r.to_id AS id FROM graph_relations r WHERE r.user_id = ${userId} AND r.from_id = w.id
        UNION ALL
        SELECT r.from_id FROM graph_relations r WHERE r.user_id = ${userId} AND r.to_id = w.id
      ) n
      WHERE w.depth < ${depth}
    ),
    nearest AS (SELECT id, min(depth) AS depth FROM walk GROUP BY id)
    SELECT e.id::text AS id, e.name, e.type, n.depth::int AS depth, e.mentions
    FROM nearest n JOIN graph_entities e ON e.user_id = ${userId} AND e.id = n.id
    ORDER BY n.depth, e.mentions DESC, e.name COLLATE "C", e.id
    LIMIT ${limit}`.execute(db);
  return r.rows;
}

/**
 * Creates the Postgres graph store on a kysely database whose schema includes {@link GraphTables}
 * (run `graphMigration` first). Works on `pg` and on PGlite. Given a transaction, it writes in
 * that transaction; given a database, each write runs in its own transaction. `close()` leaves the
 * database open: its owner closes it.
 */
export function createPostgresGraphStore<DB extends GraphTables>(database: Kysely<DB>): GraphStore {
  const db = database as unknown as Db;

  async function inTransaction(fn: (trx: Db) => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (db.isTransaction) return await fn(db);
        return await db.transaction().execute(fn);
      } catch (err) {
        const code = pgCode(err);
        if (db.isTransaction || attempt >= 3 || !code || !RETRYABLE.has(code)) throw toStoreError(err);
      }
    }
  }

  return {
    kind: "postgres",

    async upsertMemory(graph: MemoryGraph) {
      const prepared = prepareMemoryGraph(graph);
      await inTransaction((trx) => write(trx, prepared));
    },

    async removeMemory(userId, memoryId) {
      const u = checkUser(userId);
      const m = checkMemoryId(memoryId);
      await inTransaction(async (trx) => dropOrphans(trx, u, await takeBack(trx, u, m)));
    },

    async removeUser(userId) {
      const u = checkUser(userId);
      await inTransaction(async (trx) => {
        for (const t of GRAPH_TABLES) await trx.deleteFrom(t).where("user_id", "=", u).execute();
      });
    },

    async query(q): Promise<GraphResult> {
      const { userId, norm, depth, limit } = prepareQuery(q);
      const empty: GraphResult = { nodes: [], edges: [], memories: [] };
      if (!norm) return empty;
      try {
        const start = await sql<{ id: string }>`
          SELECT id::text AS id FROM graph_entities WHERE user_id = ${userId} AND norm_name = ${norm}`.execute(
          db,
        );
        const startId = start.rows[0]?.id;
        if (!startId) return empty;
        // Nodes are answered nearest first, so when the entities within d hops already fill the
        // limit, deeper ones can never be answered: deepen one hop at a time and stop there.
        // Same answer as walking the full depth, without expanding hubs' neighbourhoods for nothing.
        let nodes: NodeRow[] = [];
        for (let d = 1; d <= depth; d++) {
          const before = nodes.length;
          nodes = await walk(db, userId, startId, d, limit);
          if (nodes.length >= limit || nodes.length === before) break;
        }
        const ids = nodes.map((n) => n.id);
        const edges = await sql<{ from: string; to: string; type: string; weight: number }>`
          SELECT from_id::text AS "from", to_id::text AS "to", type, weight FROM graph_relations
          WHERE user_id = ${userId} AND from_id IN (${uuids(ids)}) AND to_id IN (${uuids(ids)})
          ORDER BY weight DESC, from_id, to_id, type`.execute(db);
        // Candidates are the `limit` newest memories of each returned node (an index range each),
        // so a hub mentioned by thousands of memories costs no more than any other node.
        const memories = await sql<{ memory_id: string; entities: string[] }>`
          WITH candidates AS (
            SELECT DISTINCT c.memory_id
            FROM (VALUES ${sql.join(ids.map((id) => sql`(${id}::uuid)`))}) AS a (id)
            CROSS JOIN LATERAL (
              SELECT m.memory_id FROM graph_mentions m
              WHERE m.user_id = ${userId} AND m.entity_id = a.id
              ORDER BY m.memory_id DESC
              LIMIT ${limit}
            ) c
          )
          SELECT c.memory_id::text AS memory_id, array_agg(m.entity_id::text ORDER BY m.entity_id) AS entities
          FROM candidates c
          JOIN graph_mentions m ON m.user_id = ${userId} AND m.memory_id = c.memory_id
          WHERE m.entity_id IN (${uuids(ids)})
          GROUP BY c.memory_id
          ORDER BY count(*) DESC, c.memory_id DESC
          LIMIT ${limit}`.execute(db);
        return {
          nodes: nodes.map((n) => ({ ...n, depth: Number(n.depth), mentions: Number(n.mentions) })),
          edges: edges.rows.map((e) => ({ ...e, weight: Number(e.weight) })),
          memories: memories.rows,
        };
      } catch (err) {
        throw toStoreError(err);
      }
    },

    async close() {},
  };
}
