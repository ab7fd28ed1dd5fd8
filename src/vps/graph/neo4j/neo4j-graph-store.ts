/**
 * A `GraphStore` on Neo4j through neo4j-driver, selected when `NEO4J_URL` is set. Same semantics
 * as the Postgres store (the same contract suite runs against it when NEO4J_URL is set).
 *
 * Model, with `user_id` on every node and relationship:
 * - `(:Entity {user_id, id, name, norm_name, type, mentions})`, unique on (user_id, norm_name);
 * - `(:Memory {user_id, id, relations})-[:MENTIONS {user_id}]->(:Entity)`; `relations` lists the
 *   relation keys the memory supports, so replacing the memory takes back exactly those;
 * - `(:Entity)-[:RELATED {user_id, type, weight}]->(:Entity)`, `weight` = supporting memories.
 *
 * Traversal is a variable-length match `[:RELATED*0..depth]` in both directions (Cypher never
 * reuses a relationship within one path, so cycles terminate), answering each entity at its
 * smallest depth.
 */
import neo4j, { type Driver, type ManagedTransaction, Neo4jError } from "neo4j-driver";
import { DionysusError, isDionysusError } from "../../../core/errors.ts";
import type { EntityType } from "../../../core/ports/entity-extractor.ts";
import type { GraphResult, GraphStore } from "../../../core/ports/graph-store.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import {
  checkMemoryId,
  checkUser,
  type PreparedGraph,
  prepareMemoryGraph,
  prepareQuery,
} from "../prepare.ts";

export interface Neo4jGraphStoreOptions {
  /** Bolt URL, for example `neo4j://localhost:7687` or `bolt://host:7687`. */
  url: string;
  user: string;
  password: string;
  /** Database name; the server's default when not given. */
  database?: string;
}

const SEP = "\t";
const relationKey = (r: { from: string; to: string; type: string }) =>
  `${r.from}${SEP}${r.to}${SEP}${r.type}`;
const parseKey = (key: string) => {
  const [from = "", to = "", type = ""] = key.split(SEP);
  return { from, to, type };
};

function toStoreError(err: unknown): unknown {
  if (isDionysusError(err)) return err;
  if (err instanceof Neo4jError) {
    if (err.code === neo4j.error.SERVICE_UNAVAILABLE || err.code === neo4j.error.SESSION_EXPIRED) {
      return new DionysusError("unavailable", `Neo4j is unavailable: ${err.message}`, { cause: err });
    }
    if (err.code.startsWith("Neo.ClientError.Security.")) {
      return new DionysusError("unavailable", `Neo4j refused the credentials: ${err.message}`, {
        cause: err,
      });
    }
  }
  return err;
}

/** Takes back a memory's mentions and relations; answers the normalised names it mentioned. */
async function takeBack(tx: ManagedTransaction, userId: string, memoryId: string): Promise<string[]> {
  const memory = await tx.run(
    "MATCH (m:Memory {user_id: $u, id: $m}) RETURN coalesce(m.relations, []) AS relations",
    {
      u: userId,
      m: memoryId,
    },
  );
  const keys = (memory.records[0]?.get("relations") as string[] | undefined) ?? [];
  if (keys.length > 0) {
    await tx.run(
      `UNWIND $rels AS r
       MATCH (a:Entity {user_id: $u, norm_name: r.from})-[x:RELATED {type: r.type}]->(b:Entity {user_id: $u, norm_name: r.to})
       SET x.weight = x.weight - 1
       WITH x WHERE x.weight <= 0
       DELETE x`,
      { u: userId, rels: keys.map(parseKey) },
    );
  }
  const mentions = await tx.run(
    `MATCH (m:Memory {user_id: $u, id: $m})-[men:MENTIONS]->(e:Entity {user_id: $u})
     SET e.mentions = e.mentions - 1
     DELETE men
     RETURN e.norm_name AS norm`,
    { u: userId, m: memoryId },
  );
  await tx.run("MATCH (m:Memory {user_id: $u, id: $m}) SET m.relations = []", { u: userId, m: memoryId });
  return mentions.records.map((r) => r.get("norm") as string);
}

async function dropOrphans(tx: ManagedTransaction, userId: string, memoryId: string, norms: string[]) {
  if (norms.length > 0) {
    await tx.run(
      `UNWIND $norms AS norm
       MATCH (e:Entity {user_id: $u, norm_name: norm}) WHERE e.mentions <= 0
       DETACH DELETE e`,
      { u: userId, norms },
    );
  }
  await tx.run("MATCH (m:Memory {user_id: $u, id: $m}) WHERE NOT EXISTS { (m)-[:MENTIONS]->() } DELETE m", {
    u: userId,
    m: memoryId,
  });
}

async function write(tx: ManagedTransaction, g: PreparedGraph): Promise<void> {
  const { userId: u, memoryId: m } = g;
  const previous = await takeBack(tx, u, m);
  if (g.entities.length > 0) {
    await tx.run("MERGE (m:Memory {user_id: $u, id: $m}) SET m.relations = $keys", {
      u,
      m,
      keys: g.relations.map(relationKey),
    });
    await tx.run(
      `MATCH (m:Memory {user_id: $u, id: $m})
       UNWIND $entities AS x
       MERGE (e:Entity {user_id: $u, norm_name: x.norm})
         ON CREATE SET e.id = x.id, e.name = x.name, e.type = x.type, e.mentions = 1
         ON MATCH SET e.mentions = e.mentions + 1,
                      e.type = CASE WHEN e.type = 'topic' THEN x.type ELSE e.type END
       MERGE (m)-[:MENTIONS {user_id: $u}]->(e)`,
      { u, m, entities: g.entities.map((e) => ({ ...e, id: uuidv7() })) },
    );
  }
  if (g.relations.length > 0) {
    await tx.run(
      `UNWIND $rels AS r
       MATCH (a:Entity {user_id: $u, norm_name: r.from}), (b:Entity {user_id: $u, norm_name: r.to})
       MERGE (a)-[x:RELATED {user_id: $u, type: r.type}]->(b)
         ON CREATE SET x.weight = 1
         ON MATCH SET x.weight = x.weight + 1`,
      { u, rels: g.relations },
    );
  }
  const kept = new Set(g.entities.map((e) => e.norm));
  await dropOrphans(
    tx,
    u,
    m,
    previous.filter((n) => !kept.has(n)),
  );
}

/** Creates the Neo4j graph store; it owns its driver, which `close()` closes. Constraints are
 * created on first use. */
export function createNeo4jGraphStore(options: Neo4jGraphStoreOptions): GraphStore {
  let driver: Driver;
  try {
    driver = neo4j.driver(options.url, neo4j.auth.basic(options.user, options.password), {
      disableLosslessIntegers: true,
    });
  } catch (err) {
    throw new DionysusError("config_invalid", `invalid Neo4j URL: ${options.url}`, { cause: err });
  }
  const session = () => driver.session({ ...(options.database ? { database: options.database } : {}) });
  let ready: Promise<void> | undefined;

  const ensureSchema = () => {
    ready ??= (async () => {
      const s = session();
      try {
        await s.run(
          "CREATE CONSTRAINT dionysus_entity_key IF NOT EXISTS FOR (e:Entity) REQUIRE (e.user_id, e.norm_name) IS UNIQUE",
        );
        await s.run(
          "CREATE CONSTRAINT dionysus_memory_key IF NOT EXISTS FOR (m:Memory) REQUIRE (m.user_id, m.id) IS UNIQUE",
        );
        await s.run("CREATE INDEX dionysus_entity_id IF NOT EXISTS FOR (e:Entity) ON (e.user_id, e.id)");
      } finally {
        await s.close();
      }
    })().catch((err) => {
      ready = undefined;
      throw toStoreError(err);
    });
    return ready;
  };

  async function writeWork(fn: (tx: ManagedTransaction) => Promise<void>): Promise<void> {
    await ensureSchema();
    const s = session();
    try {
      await s.executeWrite(fn);
    } catch (err) {
      throw toStoreError(err);
    } finally {
      await s.close();
    }
  }

  return {
    kind: "neo4j",

    async upsertMemory(graph) {
      const prepared = prepareMemoryGraph(graph);
      await writeWork((tx) => write(tx, prepared));
    },

    async removeMemory(userId, memoryId) {
      const u = checkUser(userId);
      const m = checkMemoryId(memoryId);
      await writeWork(async (tx) => dropOrphans(tx, u, m, await takeBack(tx, u, m)));
    },

    async removeUser(userId) {
      const u = checkUser(userId);
      // In batches, so that a user with a large graph does not need one huge transaction.
      for (const label of ["Memory", "Entity"]) {
        for (;;) {
          let deleted = 0;
          await writeWork(async (tx) => {
            const r = await tx.run(
              `MATCH (n:${label} {user_id: $u}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS n`,
              { u },
            );
            deleted = Number(r.records[0]?.get("n") ?? 0);
          });
          if (deleted === 0) break;
        }
      }
    },

    async query(q): Promise<GraphResult> {
      const { userId: u, norm, depth, limit } = prepareQuery(q);
      if (!norm) return { nodes: [], edges: [], memories: [] };
      await ensureSchema();
      const s = session();
      try {
        return await s.executeRead(async (tx) => {
          // depth is an integer 1..3 (checked above): Cypher cannot take a path length as a parameter.
          const nodes = await tx.run(
            `MATCH (s:Entity {user_id: $u, norm_name: $norm})
             MATCH p = (s)-[:RELATED*0..${depth}]-(n:Entity)
             WHERE n.user_id = $u AND all(x IN relationships(p) WHERE x.user_id = $u)
             WITH n, min(length(p)) AS depth
             RETURN n.id AS id, n.name AS name, n.type AS type, depth, n.mentions AS mentions
             ORDER BY depth, mentions DESC, name, id
             LIMIT $limit`,
            { u, norm, limit: neo4j.int(limit) },
          );
          const list = nodes.records.map((r) => ({
            id: r.get("id") as string,
            name: r.get("name") as string,
            type: r.get("type") as EntityType,
            depth: Number(r.get("depth")),
            mentions: Number(r.get("mentions")),
          }));
          if (list.length === 0) return { nodes: [], edges: [], memories: [] };
          const ids = list.map((n) => n.id);
          const edges = await tx.run(
            `MATCH (a:Entity {user_id: $u})-[x:RELATED {user_id: $u}]->(b:Entity {user_id: $u})
             WHERE a.id IN $ids AND b.id IN $ids
             RETURN a.id AS from_id, b.id AS to_id, x.type AS type, x.weight AS weight
             ORDER BY weight DESC, from_id, to_id, type`,
            { u, ids },
          );
          const memories = await tx.run(
            `UNWIND $ids AS eid
             CALL {
               WITH eid
               MATCH (m:Memory {user_id: $u})-[:MENTIONS]->(:Entity {user_id: $u, id: eid})
               RETURN m ORDER BY m.id DESC LIMIT $limit
             }
             WITH DISTINCT m
             MATCH (m)-[:MENTIONS]->(e:Entity {user_id: $u})
             WHERE e.id IN $ids
             WITH m, collect(e.id) AS entities
             RETURN m.id AS memory_id, entities
             ORDER BY size(entities) DESC, memory_id DESC
             LIMIT $limit`,
            { u, ids, limit: neo4j.int(limit) },
          );
          return {
            nodes: list,
            edges: edges.records.map((r) => ({
              from: r.get("from_id") as string,
              to: r.get("to_id") as string,
              type: r.get("type") as string,
              weight: Number(r.get("weight")),
            })),
            memories: memories.records.map((r) => ({
              memory_id: r.get("memory_id") as string,
              entities: [...(r.get("entities") as string[])].sort(),
            })),
          };
        });
      } catch (err) {
        throw toStoreError(err);
      } finally {
        await s.close();
      }
    },

    async close() {
      await driver.close();
    },
  };
}
