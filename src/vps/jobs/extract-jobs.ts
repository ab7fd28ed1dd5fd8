/**
 * `extract` jobs: the knowledge graph follows each memory's content. The entities of the current
 * content are extracted (outside any transaction: it takes 20-35 ms per KB locally, seconds with
 * an LLM), then written only if the content is still the one extracted; a deleted memory's
 * mentions and relations are taken back. `graph_extracted` records what the graph was built from,
 * so a tags-only edit, or a job queued twice, costs one lookup.
 */
import { type Kysely, sql, type Transaction } from "kysely";
import type { EntityExtractor } from "../../core/ports/entity-extractor.ts";
import type { GraphStore } from "../../core/ports/graph-store.ts";
import type { VpsTables } from "../db/schema.ts";

/** The graph store to write with inside a transaction (the Postgres store joins it; Neo4j cannot). */
export type GraphIn = (tx: Transaction<VpsTables>) => GraphStore;

export type ExtractOutcome = "extracted" | "removed" | "unchanged" | "superseded";

/** Entities are taken from the first this many characters of a memory: the local extractor
 * costs 20-35 ms per KB on the server's event loop, so a 1 MiB memory would stall it for seconds. */
export const MAX_EXTRACT_CHARS = 16_000;

/** Brings the graph of one memory up to date with its content. */
export async function refreshMemoryGraph(
  db: Kysely<VpsTables>,
  extractor: EntityExtractor,
  graphIn: GraphIn,
  userId: string,
  memoryId: string,
): Promise<ExtractOutcome> {
  // Two primary-key lookups rather than a join (whose plan can turn into a scan per row when the
  // tables' statistics are stale).
  const found = await sql<{ content: string; deleted: boolean; hash: string }>`
    select content, deleted, md5(content) as hash from memories
    where user_id = ${userId} and id = ${memoryId}`.execute(db);
  const row = found.rows[0];
  if (!row || row.deleted) {
    await db.transaction().execute(async (tx) => {
      await graphIn(tx).removeMemory(userId, memoryId);
      await sql`delete from graph_extracted where user_id = ${userId} and memory_id = ${memoryId}`.execute(
        tx,
      );
    });
    return "removed";
  }
  const done = await sql<{ content_hash: string; extractor: string }>`
    select content_hash, extractor from graph_extracted
    where user_id = ${userId} and memory_id = ${memoryId}`.execute(db);
  if (done.rows[0]?.content_hash === row.hash && done.rows[0]?.extractor === extractor.id) return "unchanged";
  const extraction = await extractor.extract(row.content.slice(0, MAX_EXTRACT_CHARS));
  return db.transaction().execute(async (tx) => {
    const now = await sql<{ hash: string; deleted: boolean }>`
      select md5(content) as hash, deleted from memories
      where user_id = ${userId} and id = ${memoryId}
      for share`.execute(tx);
    const cur = now.rows[0];
    if (!cur || cur.deleted || cur.hash !== row.hash) return "superseded";
    await graphIn(tx).upsertMemory({ userId, memoryId, ...extraction });
    await sql`
      insert into graph_extracted (user_id, memory_id, extractor, content_hash)
      values (${userId}, ${memoryId}, ${extractor.id}, ${row.hash})
      on conflict (user_id, memory_id) do update set extractor = excluded.extractor,
        content_hash = excluded.content_hash`.execute(tx);
    return "extracted";
  });
}
