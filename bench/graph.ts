/**
 * Benchmark of the heavy-query building blocks (docs/heavy.md): graph query latency on real PostgreSQL
 * (10,000 entities for one user, depth 1/2/3), the built-in embedder's throughput and the local
 * entity extractor's cost per KB. Appends a dated section to bench/RESULTS.md.
 *
 *   bun run bench:graph            # uses TEST_DATABASE_URL or the local test PostgreSQL
 *   BENCH_ENTITIES=2000 bun run bench:graph
 *   BENCH_SKIP_GRAPH=1 bun run bench:graph   # only the CPU parts (no database)
 *   BENCH_KEEP_DB=1 bun run bench:graph   # keep the database to EXPLAIN queries; drop it yourself
 *   BENCH_ONLY_GRAPH=1 BENCH_NO_RESULTS=1 bun run bench:graph   # graph part only, not recorded
 *
 * Creates its own database (random name) and drops it at the end.
 */
import { appendFileSync, existsSync, writeFileSync } from "node:fs";
import os from "node:os";
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import { createBuiltinEmbedder } from "../src/core/embedding/builtin-embedder.ts";
import type { EntityType } from "../src/core/ports/entity-extractor.ts";
import { uuidv7 } from "../src/core/uuid.ts";
import { VERSION } from "../src/core/version.ts";
import { findDuplicateGroups } from "../src/vps/consolidate/near-duplicates.ts";
import { type GraphTables, graphMigration } from "../src/vps/db/graph-schema.ts";
import { bytesToVector, vectorToBytes } from "../src/vps/db/vector-bytes.ts";
import { extractEntities } from "../src/vps/graph/extract/compromise-extractor.ts";
import { createPostgresGraphStore } from "../src/vps/graph/postgres/postgres-graph-store.ts";
import { topKByDot } from "../src/vps/search/vector.ts";
import { createTestDatabase } from "../tests/helpers/harness.ts";

const ENTITIES = Number(process.env.BENCH_ENTITIES ?? 10_000);
const MEMORIES = Number(process.env.BENCH_MEMORIES ?? ENTITIES * 2);
const QUERIES = Number(process.env.BENCH_QUERIES ?? 300);
const adminUrl = process.env.TEST_DATABASE_URL ?? "postgres://dionysus:dionysus@127.0.0.1:5432/dionysus_test";

/** Deterministic PRNG (mulberry32), so runs are comparable. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
/** Zipf-like index in [0, n): a few entities are very common, most are rare. */
const zipf = (n: number) => Math.min(n - 1, Math.floor(n ** rand()) - 1 + 0);

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const fmt = (ms: number) => (ms < 10 ? ms.toFixed(2) : ms.toFixed(1));

const TYPES: EntityType[] = ["person", "place", "organization", "topic"];
const lines: string[] = [];
const log = (s: string) => {
  console.log(s);
  lines.push(s);
};

async function benchGraph(): Promise<void> {
  const testDb = await createTestDatabase("dionysus_bench_graph", adminUrl);
  const url = new URL(testDb.url);
  const dbName = url.pathname.slice(1);
  const db = new Kysely<GraphTables>({
    dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url.href, max: 4 }) }),
  });
  try {
    await graphMigration.up(db);
    const pgVersion = (await sql<{ server_version: string }>`SHOW server_version`.execute(db)).rows[0]!
      .server_version;
    const store = createPostgresGraphStore(db);
    const userId = "bench-user";
    const names = Array.from({ length: ENTITIES }, (_, i) => `entity ${i}`);
    const typeOf = (i: number) => TYPES[i % TYPES.length]!;

    // Each memory mentions one entity in turn (so all exist) plus 2-4 Zipf-popular ones, all
    // related by co-occurrence, as the local extractor would produce.
    const t0 = performance.now();
    let next = 0;
    const writeOne = async (i: number) => {
      const idx = new Set<number>([i % ENTITIES]);
      const extra = 2 + Math.floor(rand() * 3);
      while (idx.size < 1 + extra) idx.add(zipf(ENTITIES));
      const es = [...idx].map((k) => ({ name: names[k]!, type: typeOf(k) }));
      const relations = [];
      for (let a = 0; a < es.length; a++)
        for (let b = a + 1; b < es.length; b++)
          relations.push({ from: es[a]!.name, to: es[b]!.name, type: "co_occurs" });
      await store.upsertMemory({ userId, memoryId: uuidv7(), entities: es, relations });
    };
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < MEMORIES) await writeOne(next++);
      }),
    );
    const loadS = (performance.now() - t0) / 1000;
    // What autovacuum would do soon after such a load: visibility map and statistics.
    await sql`VACUUM ANALYZE graph_entities, graph_relations, graph_mentions, graph_relation_sources`.execute(
      db,
    );
    const counts = (
      await sql<{ e: number; r: number; m: number }>`
        SELECT (SELECT count(*) FROM graph_entities)::int AS e, (SELECT count(*) FROM graph_relations)::int AS r,
               (SELECT count(*) FROM graph_mentions)::int AS m`.execute(db)
    ).rows[0]!;
    log(
      `- PostgreSQL ${pgVersion}; one user with ${counts.e} entities, ${counts.r} relations, ${counts.m} mentions from ${MEMORIES} memories (Zipf-skewed: a few hub entities).`,
    );
    log(
      `- Write path: ${MEMORIES} \`upsertMemory\` calls (3-5 entities each, 4 concurrent) in ${loadS.toFixed(1)} s = ${Math.round(MEMORIES / loadS)} memories/s.`,
    );

    for (const depth of [1, 2, 3]) {
      const n = depth === 3 ? Math.min(QUERIES, 100) : QUERIES;
      // Warm-up, then measured queries from random entities (hubs included, by chance).
      for (let i = 0; i < 20; i++) await store.query({ userId, entity: pick(names), depth, limit: 20 });
      const times: number[] = [];
      let nodes = 0;
      for (let i = 0; i < n; i++) {
        const s = performance.now();
        const r = await store.query({ userId, entity: pick(names), depth, limit: 20 });
        times.push(performance.now() - s);
        nodes += r.nodes.length;
      }
      times.sort((a, b) => a - b);
      log(
        `- Graph query depth ${depth}, limit 20, ${n} random entities: p50 ${fmt(percentile(times, 50))} ms, p95 ${fmt(percentile(times, 95))} ms, p99 ${fmt(percentile(times, 99))} ms, max ${fmt(times.at(-1)!)} ms (avg ${(nodes / n).toFixed(1)} nodes answered).`,
      );
    }
    // The worst case: the most connected entity.
    const hub = names[0]!;
    const times: number[] = [];
    for (let i = 0; i < 30; i++) {
      const s = performance.now();
      await store.query({ userId, entity: hub, depth: 2, limit: 20 });
      times.push(performance.now() - s);
    }
    times.sort((a, b) => a - b);
    log(
      `- Graph query depth 2 from the biggest hub ("${hub}"): p50 ${fmt(percentile(times, 50))} ms, p95 ${fmt(percentile(times, 95))} ms.`,
    );
  } finally {
    await db.destroy();
    if (process.env.BENCH_KEEP_DB) console.log(`kept database ${dbName} (drop it yourself)`);
    else await testDb.drop();
  }
}

const WORDS =
  "meeting project garden coffee budget review design logo travel train flight hotel dinner lunch birthday doctor dentist appointment school homework invoice contract report deadline weekend holiday concert book film recipe bread".split(
    " ",
  );
const PEOPLE = ["Ana Lima", "Bob Smith", "Sarah", "Tom", "Jane Doe", "Carlos Mendes", "Priya", "Mark Chen"];
const PLACES = ["Lisbon", "Paris", "Berlin", "New York City", "Tokyo", "Porto", "Madrid", "London"];
const ORGS = ["Google", "Microsoft", "Acme Corporation", "the city council", "Red Cross", "Amazon"];

/** A plausible memory of about `bytes` bytes. */
function memoryText(bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  while (size < bytes) {
    const s = pick([
      () =>
        `Had ${pick(WORDS)} with ${pick(PEOPLE)} in ${pick(PLACES)} about the ${pick(WORDS)} ${pick(WORDS)}.`,
      () => `${pick(PEOPLE)} from ${pick(ORGS)} called about the ${pick(WORDS)} next week.`,
      () => `Remind me to email ${pick(PEOPLE)} about the ${pick(WORDS)} and the ${pick(WORDS)}.`,
      () => `The ${pick(WORDS)} in ${pick(PLACES)} was better than expected, said ${pick(PEOPLE)}.`,
    ])();
    parts.push(s);
    size += s.length + 1;
  }
  return parts.join(" ");
}

async function benchEmbedder(): Promise<void> {
  const embedder = createBuiltinEmbedder();
  for (const bytes of [200, 1024]) {
    const texts = Array.from({ length: 2000 }, () => memoryText(bytes));
    await embedder.embed(texts.slice(0, 100));
    const totalKb = texts.reduce((a, t) => a + t.length, 0) / 1024;
    const s = performance.now();
    await embedder.embed(texts);
    const ms = performance.now() - s;
    log(
      `- Built-in embedder (${embedder.id}), ${texts.length} texts of ~${bytes} B: ${Math.round((texts.length / ms) * 1000)} texts/s, ${(ms / totalKb).toFixed(3)} ms per KB (one core).`,
    );
  }
}

function benchExtraction(): void {
  const texts = Array.from({ length: 300 }, () => memoryText(1024));
  for (const t of texts.slice(0, 30)) extractEntities(t);
  const totalKb = texts.reduce((a, t) => a + t.length, 0) / 1024;
  const per: number[] = [];
  let entities = 0;
  for (const t of texts) {
    const s = performance.now();
    entities += extractEntities(t).entities.length;
    per.push((performance.now() - s) / (t.length / 1024));
  }
  per.sort((a, b) => a - b);
  const mean = per.reduce((a, b) => a + b, 0) / per.length;
  log(
    `- Entity extraction (compromise-v1), ${texts.length} memories of ~1 KB (${totalKb.toFixed(0)} KB): mean ${mean.toFixed(1)} ms per KB, p95 ${percentile(per, 95).toFixed(1)} ms per KB, ${(entities / texts.length).toFixed(1)} entities per memory.`,
  );
}

/** Exact vector scan in JS (semantic search without pgvector): 100,000 stored float32 vectors. */
async function benchScan(): Promise<void> {
  const embedder = createBuiltinEmbedder();
  const n = 100_000;
  const base = await embedder.embed(Array.from({ length: 1000 }, () => memoryText(200)));
  // 100 distinct texts' vectors repeated would make ties; perturb so every vector differs.
  const stored = Array.from({ length: n }, (_, i) => {
    const v = base[i % base.length]!.map((x) => x + (rand() - 0.5) * 0.01);
    return { id: `m${i}`, bytes: vectorToBytes(v) };
  });
  const decodeStart = performance.now();
  const decoded = stored.map((s) => ({ id: s.id, vector: bytesToVector(s.bytes) }));
  const decodeMs = performance.now() - decodeStart;
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const [q] = await embedder.embed([memoryText(100)]);
    const s = performance.now();
    topKByDot(q!, decoded, 10);
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  log(
    `- Exact vector scan in JS (\`topKByDot\`), ${n} vectors of 384 float32 already in memory: p50 ${fmt(percentile(times, 50))} ms, p95 ${fmt(percentile(times, 95))} ms per query; decoding them from bytes took ${fmt(decodeMs)} ms.`,
  );
}

/** Near-duplicate grouping for consolidation. */
function benchDedup(): void {
  const n = 20_000;
  const t0 = Date.UTC(2026, 0, 1);
  const memories = Array.from({ length: n }, (_, i) => ({
    id: `m${String(i).padStart(6, "0")}`,
    content: memoryText(200),
    created_at: new Date(t0 + i * 1000).toISOString(),
  }));
  const s = performance.now();
  const groups = findDuplicateGroups(memories);
  const ms = performance.now() - s;
  log(
    `- Near-duplicate grouping (\`findDuplicateGroups\`), ${n} memories of ~200 B: ${(ms / 1000).toFixed(2)} s (${groups.length} groups; the texts come from 4 sentence templates, which fills the MinHash buckets more than real notes would).`,
  );
}

const started = new Date();
const loadAtStart = os.loadavg()[0]!;
// BENCH_ONLY_GRAPH: just the graph part (bench/heavy.ts runs it so, and reports it itself).
if (!process.env.BENCH_ONLY_GRAPH) {
  await benchEmbedder();
  benchExtraction();
  await benchScan();
  benchDedup();
}
if (process.env.BENCH_SKIP_GRAPH) log("- (graph part skipped: BENCH_SKIP_GRAPH)");
else await benchGraph();
if (process.env.BENCH_NO_RESULTS) process.exit(0);

const cpus = os.cpus();
const header = `### ${started.toISOString().slice(0, 16).replace("T", " ")} UTC — Dionysus ${VERSION}, Bun ${Bun.version}, ${os.platform()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, load average ${loadAtStart.toFixed(1)} at start and ${os.loadavg()[0]!.toFixed(1)} at the end`;
const file = new URL("./RESULTS.md", import.meta.url).pathname;
const section = "## Graph and embeddings (building blocks)";
if (!existsSync(file)) writeFileSync(file, "# Benchmark results\n");
const existing = await Bun.file(file).text();
const goals =
  "Goals: graph query p95 at depth 2 with 10,000 entities under 50 ms. Run with `bun run bench:graph` (real PostgreSQL on 127.0.0.1).";
appendFileSync(
  file,
  `${existing.includes(section) ? "" : `\n${section}\n\n${goals}\n`}\n${header}\n\n${lines.join("\n")}\n`,
);
console.log(`\nappended to ${file}`);
