/**
 * The heavy queries of one VPS instance, wired from the config (docs/heavy.md):
 * - embedder: Ollama's `/api/embed` when `ollama_url` is set, else the built-in one;
 * - chat model (ask, summaries, entity extraction): Ollama's `/api/chat` when `ollama_url` is set;
 * - entity extractor: the LLM when configured (the local one when it fails), else compromise;
 * - graph store: Neo4j when `neo4j_url` is set, else the Postgres tables;
 * - search, graph queries, ask, the job queue and its worker.
 */
import type { VpsConfig } from "../core/config.ts";
import { createWordVectorEmbedder } from "../core/embedding/word-vector-embedder.ts";
import { HlcClock } from "../core/hlc.ts";
import type { ChatModel } from "../core/ports/chat-model.ts";
import type { Embedder } from "../core/ports/embedder.ts";
import type { EntityExtractor } from "../core/ports/entity-extractor.ts";
import type { GraphStore } from "../core/ports/graph-store.ts";
import { runConsolidation } from "./consolidate/consolidation.ts";
import { notifyChannel } from "./db/channel.ts";
import type { VpsDatabase } from "./db/database.ts";
import { createCompromiseExtractor } from "./graph/extract/compromise-extractor.ts";
import { createLlmEntityExtractor } from "./graph/extract/llm-extractor.ts";
import { createGraphService } from "./graph/graph-service.ts";
import { createNeo4jGraphStore } from "./graph/neo4j/neo4j-graph-store.ts";
import { createPostgresGraphStore } from "./graph/postgres/postgres-graph-store.ts";
import { processEmbedJobs } from "./jobs/embed-jobs.ts";
import { type GraphIn, refreshMemoryGraph } from "./jobs/extract-jobs.ts";
import { createJobQueue } from "./jobs/queue.ts";
import { type JobHandlers, JobWorker, type JobWorkerOptions } from "./jobs/worker.ts";
import type { Logger } from "./log.ts";
import { createAskService } from "./search/ask.ts";
import { createOllamaChat } from "./search/ollama/ollama-chat.ts";
import { createOllamaEmbedder } from "./search/ollama/ollama-embedder.ts";
import { type PgVector, setupPgvector } from "./search/pgvector.ts";
import { createSearchService } from "./search/search-service.ts";
import { createVectorIndex } from "./search/vector-index.ts";
import { VPS_DEVICE } from "./sync/server-write.ts";

export interface HeavyOverrides {
  embedder?: Embedder;
  chat?: ChatModel;
  extractor?: EntityExtractor;
  graphStore?: GraphStore;
  /** Worker poll interval (ms). */
  workerPollMs?: number;
  /** Share of the time the worker may be busy in a backlog (1 in a process of its own). */
  workerBusyShare?: number;
  /** Told after the worker wrote to a user's change feed (new vectors, consolidation results),
   * so that webhooks fire for those changes as they do for pushes. */
  onChanges?: (userId: string) => void;
}

/** The heavy queries of one instance with their adapters, job queue and worker. */
export type HeavyQueries = ReturnType<typeof createHeavyQueries>;

export function createHeavyQueries(
  config: VpsConfig,
  database: VpsDatabase,
  log: Logger,
  overrides: HeavyOverrides = {},
) {
  const db = database.db;
  const embedder =
    overrides.embedder ??
    (config.ollama_url
      ? createOllamaEmbedder({ url: config.ollama_url, model: config.ollama_model })
      : createWordVectorEmbedder());
  const chat =
    overrides.chat ??
    (config.ollama_url
      ? createOllamaChat({ url: config.ollama_url, model: config.ollama_chat_model })
      : undefined);
  const localExtractor = createCompromiseExtractor();
  const extractor =
    overrides.extractor ??
    (chat
      ? createLlmEntityExtractor({
          chat,
          fallback: localExtractor,
          onFallback: (reason) =>
            log({ level: "warn", msg: "LLM extraction failed; used the local extractor", reason }),
        })
      : localExtractor);
  const graphStore =
    overrides.graphStore ??
    (config.neo4j_url
      ? createNeo4jGraphStore({
          url: config.neo4j_url,
          user: config.neo4j_user,
          password: config.neo4j_password ?? "",
        })
      : createPostgresGraphStore(db));
  // The Postgres store writes inside the caller's transaction (atomic with the content check);
  // Neo4j cannot join a Postgres transaction.
  const graphIn: GraphIn =
    graphStore.kind === "postgres" && !overrides.graphStore
      ? (tx) => createPostgresGraphStore(tx)
      : () => graphStore;

  const vectors = createVectorIndex(db, embedder.id);
  let pgvector: PgVector | undefined;
  const search = createSearchService({ db, embedder, vectors, ann: () => pgvector });
  const graph = createGraphService(db, graphStore);
  const ask = createAskService(search, chat);
  const queue = createJobQueue(db);
  const clock = new HlcClock(VPS_DEVICE);

  const handlers: JobHandlers = {
    embed: async (jobs) => {
      const written = await processEmbedJobs(
        db,
        embedder,
        jobs.flatMap((j) => (j.memory_id ? [{ user_id: j.user_id, memory_id: j.memory_id }] : [])),
        pgvector,
      );
      if (written > 0)
        for (const userId of new Set(jobs.map((j) => j.user_id))) overrides.onChanges?.(userId);
    },
    extract: async (job) => {
      if (job.memory_id) await refreshMemoryGraph(db, extractor, graphIn, job.user_id, job.memory_id);
    },
    consolidate: async (job, heartbeat) => {
      const result = await runConsolidation(
        { db, clock, extractor, graphIn, chat, heartbeat, log: (e) => log(e) },
        job.user_id,
        job.id,
      );
      overrides.onChanges?.(job.user_id);
      return { ...result };
    },
  };

  const onJobEvent: JobWorkerOptions["onJobEvent"] = async (row) => {
    const job = await queue.get(row.user_id, row.id);
    if (job) await notifyChannel(db, { type: "job", user_id: row.user_id, job });
  };

  const worker = new JobWorker({
    queue,
    handlers,
    onJobEvent,
    log: (e) => log(e),
    ...(overrides.workerPollMs ? { pollMs: overrides.workerPollMs } : {}),
    ...(overrides.workerBusyShare ? { busyShare: overrides.workerBusyShare } : {}),
  });

  let closed = false;
  return {
    embedder,
    chat,
    extractor,
    graphStore,
    vectors,
    search,
    graph,
    ask,
    queue,
    worker,
    clock,
    /** Uses pgvector when the database has it (PostgreSQL only; PGlite ships without it). */
    async init(): Promise<void> {
      if (database.kind === "postgres") pgvector = await setupPgvector(db, embedder, log);
    },
    /** Starts the worker, after queueing work for memories written before it existed. */
    startWorker(): void {
      queue
        .backfill(embedder.id, extractor.id)
        .then((n) => n > 0 && log({ msg: "queued background work for existing memories", jobs: n }))
        .catch((err) => log({ level: "error", msg: "backfill failed", error: String(err) }))
        .finally(() => {
          if (!closed) worker.start();
        });
    },
    async close(): Promise<void> {
      closed = true;
      await worker.stop();
      await graphStore.close();
    },
  };
}
