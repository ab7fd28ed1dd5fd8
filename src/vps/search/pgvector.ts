/**
 * pgvector, when the database has it: vectors are also kept in a `vec vector` column of
 * `embeddings`, with an HNSW index (cosine) for the current embedder, and semantic search asks
 * the database (`ORDER BY vec <=> query`) instead of scanning the cached vectors in memory.
 *
 * Detected at start: the extension must be available (`pg_available_extensions`) and creatable
 * by the VPS's database role (or already created). Anything that fails here leaves the exact scan
 * in charge, with a log line. NOT EXERCISED BY THE TESTS: no pgvector could be installed where this
 * was built (docs/heavy.md, "Embeddings"); the exact scan is the tested path.
 */
import { createHash } from "node:crypto";
import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Embedder } from "../../core/ports/embedder.ts";
import type { VpsTables } from "../db/schema.ts";
import { bytesToVector } from "../db/vector-bytes.ts";
import type { VectorSink } from "../jobs/embed-jobs.ts";
import type { Logger } from "../log.ts";
import type { AnnSearch } from "./search-service.ts";
import type { ScoredId } from "./vector.ts";

const literal = (v: ArrayLike<number>) => `[${Array.from(v, (x) => (Number.isFinite(x) ? x : 0)).join(",")}]`;

export type PgVector = AnnSearch & VectorSink;

/** pgvector's search and sink for `embedder`, or undefined when pgvector cannot be used. */
export async function setupPgvector(
  db: Kysely<VpsTables>,
  embedder: Embedder,
  log: Logger,
): Promise<PgVector | undefined> {
  let dims = embedder.dimensions;
  try {
    const found = await sql<{ n: number }>`
      select count(*)::int as n from pg_available_extensions where name = 'vector'`.execute(db);
    if (!found.rows[0]?.n) return undefined;
    // An Ollama embedder learns its vector size from its first answer: ask for one.
    if (dims <= 0) dims = (await embedder.embed(["dimension probe"]))[0]?.length ?? 0;
    if (dims <= 0) return undefined;
    await sql`create extension if not exists vector`.execute(db);
    await sql`alter table embeddings add column if not exists vec vector`.execute(db);
    const name = `embeddings_vec_${createHash("md5").update(`${embedder.id}/${dims}`).digest("hex").slice(0, 12)}`;
    await sql`
      create index if not exists ${sql.id(name)} on embeddings
      using hnsw ((vec::vector(${sql.raw(String(dims))})) vector_cosine_ops)
      where model = ${sql.lit(embedder.id)}`.execute(db);
  } catch (err) {
    log({
      level: "warn",
      msg: "pgvector is available but could not be set up; using the exact scan",
      error: String(err),
    });
    return undefined;
  }
  const d = sql.raw(String(dims));

  async function fill(
    tx: Kysely<VpsTables>,
    userId: string | undefined,
    ids: string[] | undefined,
  ): Promise<number> {
    const rows = await sql<{ user_id: string; memory_id: string; vector: Uint8Array }>`
      select user_id, memory_id, vector from embeddings
      where model = ${embedder.id} and vec is null
        ${userId ? sql`and user_id = ${userId}` : sql``}
        ${ids ? sql`and memory_id = any(${ids}::text[])` : sql``}
      limit 1000`.execute(tx);
    if (rows.rows.length === 0) return 0;
    const values = rows.rows.map((r) => ({
      u: r.user_id,
      m: r.memory_id,
      v: literal(bytesToVector(r.vector)),
    }));
    await sql`
      update embeddings e set vec = x.v::vector
      from jsonb_to_recordset(${JSON.stringify(values)}::jsonb) as x(u text, m text, v text)
      where e.user_id = x.u and e.memory_id = x.m and e.model = ${embedder.id}`.execute(tx);
    return rows.rows.length;
  }

  // Vectors stored before pgvector was there get their column filled in the background.
  void (async () => {
    try {
      while ((await fill(db, undefined, undefined)) > 0) {}
    } catch (err) {
      log({ level: "warn", msg: "filling pgvector columns failed", error: String(err) });
    }
  })();
  log({ msg: "semantic search uses pgvector", index: "hnsw", dims });

  return {
    async afterWrite(tx, userId, memoryIds) {
      await sql`update embeddings set vec = null where user_id = ${userId} and model = ${embedder.id}
        and memory_id = any(${memoryIds}::text[])`.execute(tx);
      await fill(tx, userId, memoryIds);
    },
    async search(
      userId: string,
      query: readonly number[],
      k: number,
      where?: RawBuilder<unknown>,
    ): Promise<ScoredId[]> {
      const q = literal(query);
      const r = await sql<{ id: string; score: number }>`
        select e.memory_id as id, 1 - ((e.vec::vector(${d})) <=> ${q}::vector(${d})) as score
        from embeddings e
        join memories m on m.user_id = e.user_id and m.id = e.memory_id
        where e.user_id = ${userId} and e.model = ${embedder.id} and e.vec is not null
          and not m.deleted and e.content_hash = md5(m.content) and ${where ?? sql`true`}
        order by (e.vec::vector(${d})) <=> ${q}::vector(${d})
        limit ${k}`.execute(db);
      return r.rows.map((x) => ({ id: x.id, score: Number(x.score) })).filter((x) => x.score > 0);
    },
  };
}
