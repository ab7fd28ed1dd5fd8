/**
 * `POST /v1/graph/query` (docs/heavy.md): the graph store's traversal, with the memories
 * behind the returned nodes read from the canonical store. A memory deleted since it was
 * extracted is left out (its mentions are taken back by its `extract` job). A `filter` narrows
 * the memories answered (the nodes and edges stay the graph's).
 */
import { type Kysely, sql } from "kysely";
import { resolveFilter } from "../../core/filter.ts";
import type { GraphStore } from "../../core/ports/graph-store.ts";
import type { GraphQueryRequest, GraphQueryResponse } from "../../core/protocol/heavy.ts";
import { filterWhere } from "../db/filter-sql.ts";
import { MEMORY_COLUMNS, rowToMemory } from "../db/memories.ts";
import type { MemoryRow, VpsTables } from "../db/schema.ts";

export type GraphService = ReturnType<typeof createGraphService>;

export function createGraphService(db: Kysely<VpsTables>, graph: GraphStore, now: () => number = Date.now) {
  return {
    kind: graph.kind,
    async query(userId: string, req: GraphQueryRequest): Promise<GraphQueryResponse> {
      const r = await graph.query({ userId, entity: req.entity, depth: req.depth, limit: req.limit });
      const ids = r.memories.map((m) => m.memory_id);
      const rows =
        ids.length === 0
          ? []
          : (
              await sql<MemoryRow>`
                select ${MEMORY_COLUMNS} from memories m
                where user_id = ${userId} and id = any(${ids}::text[]) and not deleted
                  and ${filterWhere(resolveFilter(req.filter, new Date(now())))}`.execute(db)
            ).rows;
      const byId = new Map(rows.map((row) => [row.id, row]));
      return {
        nodes: r.nodes,
        edges: r.edges,
        memories: r.memories.flatMap((m) => {
          const row = byId.get(m.memory_id);
          if (!row) return [];
          const { embedding: _e, ...memory } = rowToMemory({ ...row, embedding: null });
          return [{ memory, entities: m.entities }];
        }),
      };
    },
  };
}
