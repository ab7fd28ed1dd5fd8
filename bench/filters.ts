#!/usr/bin/env bun
/**
 * Filtered recall and the cost of the scope/source/occurred_at fields on the edge store.
 * Loads N memories of the bench corpus (as pulled changes, in batches), 1 % of them in the scope
 * `team/rare` (and tagged `rare`), 50 % under `work/` (`work/a`, `work/b`), the rest in `home`;
 * then measures in process, side by side on the same store:
 *
 * - keyword recall p50/p95 with no filter, a 1 % filter and a 50 % filter (and a few more shapes);
 * - list (newest first) with the same filters;
 * - ingest p50/p95 of a local write without and with scope, occurred_at and metadata;
 * - the database size with the new columns and index, and the same file with them dropped.
 *
 *   bun run bench:filters                 # 100,000 memories
 *   bun run bench:filters -- --n 10000    # a quick run
 *
 * Flags: --n, --queries, --ingest, --seed, --no-write (do not touch RESULTS.md).
 */
import { Database } from "bun:sqlite";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { type MemoryFilter, resolveFilter } from "../src/core/filter.ts";
import { formatHlc } from "../src/core/hlc.ts";
import type { Change } from "../src/core/protocol/sync.ts";
import { queryTokens } from "../src/core/query.ts";
import { uuidv7 } from "../src/core/uuid.ts";
import { filterSql } from "../src/edge/store/sqlite/filter-sql.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import { STOPWORDS } from "../src/edge/store/sqlite/recall-plan.ts";
import { corpus } from "./corpus.ts";

const ROOT = resolve(import.meta.dir, "..");
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    n: { type: "string", default: "100000" },
    queries: { type: "string", default: "1000" },
    ingest: { type: "string", default: "300" },
    seed: { type: "string", default: "42" },
    "no-write": { type: "boolean", default: false },
  },
});
const N = Number(args.n);
const SEED = Number(args.seed);
const log = (s: string) => process.stderr.write(`${s}\n`);
const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const ms = (x: number) => `${x.toFixed(2)} ms`;
const mb = (b: number) => `${(b / 1024 / 1024).toFixed(1)} MB`;

const dir = mkdtempSync(join(tmpdir(), "dionysus-bench-filters-"));
const path = join(dir, "edge.db");
const started = new Date();
const load0 = loadavg()[0]!;

// ---- load -------------------------------------------------------------------------------------
log(`loading ${N} memories ...`);
const gen = corpus(SEED);
const base = Date.parse("2026-01-01T00:00:00Z");
const store = createSqliteStore({ path });
let batch: Change[] = [];
for (let i = 0; i < N; i++) {
  const { content, tags } = gen.memory();
  const rare = i % 100 === 0;
  const scope = rare ? "team/rare" : i % 2 === 0 ? `work/${i % 4 === 0 ? "a" : "b"}` : "home";
  const at = new Date(base + i * 60_000).toISOString();
  batch.push({
    id: uuidv7(base + i),
    content,
    kind: "episodic",
    tags: rare ? [...tags, "rare"] : tags,
    metadata: { n: i % 10 },
    embedding: null,
    created_at: at,
    updated_at: at,
    hlc: formatHlc({ ms: base + i, counter: 0, node: "bench-device" }),
    deleted: false,
    origin_device: "bench-device",
    scope,
    source: i % 3 === 0 ? "mcp:claude-desktop" : "cli",
    occurred_at: null,
    seq: i + 1,
  });
  if (batch.length === 1000) {
    store.applyChanges(batch, `bench.${i + 1}`);
    batch = [];
  }
  if (i > 0 && i % 20_000 === 0) log(`  ${i} ...`);
}
if (batch.length) store.applyChanges(batch, `bench.${N}`);

// ---- recall and list ------------------------------------------------------------------------------
const qgen = corpus(SEED + 1);
const queries = Array.from({ length: Number(args.queries) }, () => qgen.query());
const filters: Array<[string, MemoryFilter | undefined]> = [
  ["no filter", undefined],
  ["scope exact, 1 %", { scope: "team/rare" }],
  ["scope prefix, 50 %", { scope: "work/*" }],
  ["tag, 1 %", { tags: ["rare"] }],
  ["source, 33 %", { source: "mcp:claude-desktop" }],
  // The corpus's memories are a minute apart from 2026-01-01: the newer half.
  ["since, 50 %", { since: new Date(base + (N * 60_000) / 2).toISOString() }],
  ["metadata n = 3, 10 %", { metadata: { n: 3 } }],
  ["scope prefix + metadata, 5 %", { scope: "work/*", metadata: { n: 4 } }],
];

for (const q of queries.slice(0, 100)) store.recall(q, 10);

/** How many memories the filter lets through that hold a word of `q` (at most 10). */
const counter = new Database(path, { readonly: true });
function matching(q: string, filter: MemoryFilter | undefined): number {
  const words = queryTokens(q).filter((t) => !STOPWORDS.has(t));
  const all = words.length > 0 ? words : queryTokens(q);
  if (all.length === 0) return 0;
  const f = filterSql(resolveFilter(filter, new Date()));
  const row = counter
    .query(
      `SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts JOIN memories AS m ON m.rid = memories_fts.rowid
       WHERE memories_fts MATCH ? AND m.deleted = 0${f.sql} LIMIT 10)`,
    )
    .get(all.map((t) => `"${t}"`).join(" OR "), ...f.params) as { n: number };
  return row.n;
}
const rows: string[][] = [];
for (const [label, filter] of filters) {
  const times: number[] = [];
  let full = 0;
  let short = 0;
  for (const q of queries) {
    const t0 = performance.now();
    const hits = store.recall(q, 10, filter);
    times.push(performance.now() - t0);
    // A page is as full as it can be when it has 10 hits, or every filtered memory with a word
    // of the query (counted apart, untimed).
    if (hits.length === 10 || hits.length === matching(q, filter)) full++;
    else short++;
  }
  const list: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    store.recent(20, filter);
    list.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  list.sort((a, b) => a - b);
  rows.push([
    label,
    ms(pct(times, 50)),
    ms(pct(times, 95)),
    `${((full / queries.length) * 100).toFixed(0)} %${short ? ` (${short} short)` : ""}`,
    ms(pct(list, 50)),
    ms(pct(list, 95)),
  ]);
  log(`${label}: recall p95 ${ms(pct(times, 95))}`);
}

// ---- ingest -------------------------------------------------------------------------------------
const ingest = (withFields: boolean) => {
  const times: number[] = [];
  for (let i = 0; i < Number(args.ingest); i++) {
    const { content, tags } = gen.memory();
    const t0 = performance.now();
    store.create(
      withFields
        ? { content, tags, scope: "work/a", occurred_at: "2026-02-01T10:00:00Z", metadata: { n: 1 } }
        : { content, tags },
      { source: "cli" },
    );
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b);
};
ingest(false);
// Alternate, so that load changes hit both alike.
const plain: number[] = [];
const fielded: number[] = [];
for (let round = 0; round < 4; round++) {
  plain.push(...ingest(false));
  fielded.push(...ingest(true));
}
plain.sort((a, b) => a - b);
fielded.sort((a, b) => a - b);
store.close();
counter.close();

// ---- size ---------------------------------------------------------------------------------------
const withPath = join(dir, "with.db");
const withoutPath = join(dir, "without.db");
copyFileSync(path, withPath);
copyFileSync(path, withoutPath);
const vacuum = (p: string, strip: boolean) => {
  const db = new Database(p);
  if (strip) {
    db.run("DROP INDEX memories_scope");
    for (const c of ["scope", "source", "occurred_at", "private"])
      db.run(`ALTER TABLE memories DROP COLUMN ${c}`);
  }
  db.run("VACUUM");
  db.run("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return statSync(p).size;
};
const sizeWith = vacuum(withPath, false);
const sizeWithout = vacuum(withoutPath, true);
rmSync(dir, { recursive: true, force: true });

// ---- report -------------------------------------------------------------------------------------
const table = (head: string[], body: string[][]) =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map(() => "---").join(" | ")} |`,
    ...body.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
const stamp = started.toISOString().slice(0, 16).replace("T", " ");
const section = [
  `### ${stamp} UTC — ${N.toLocaleString("en")} memories, Bun ${Bun.version}, 2-core shared VM, loaded by parallel work (load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at the end)`,
  "",
  `In process (\`store.recall(query, 10, filter)\`, \`store.recent(20, filter)\`), ${queries.length} generated queries per row, one after another. "Full page" is the share of queries answered with 10 results, or with every filtered memory that holds a word of the query when there are fewer.`,
  "",
  table(["filter", "recall p50", "recall p95", "full page", "list p50", "list p95"], rows),
  "",
  table(
    ["local write (create, one transaction, synchronous = FULL)", "p50", "p95"],
    [
      ["content and tags only", ms(pct(plain, 50)), ms(pct(plain, 95))],
      ["with scope, occurred_at and metadata", ms(pct(fielded, 50)), ms(pct(fielded, 95))],
    ],
  ),
  "",
  table(
    ["database (after VACUUM)", "size"],
    [
      ["with scope, source, occurred_at, private and the scope index", mb(sizeWith)],
      ["the same file with them dropped", mb(sizeWithout)],
      [
        "cost",
        `${mb(sizeWith - sizeWithout)} (${(((sizeWith - sizeWithout) / sizeWithout) * 100).toFixed(1)} %)`,
      ],
    ],
  ),
  "",
].join("\n");
process.stdout.write(`${section}\n`);

if (!args["no-write"]) {
  const file = join(ROOT, "bench", "RESULTS.md");
  const text = readFileSync(file, "utf8");
  const heading = "## Filtered recall (scopes and filters)";
  const intro = `${heading}\n\nGoal: keyword recall p95 ≤ 10 ms at 100,000 memories with a filter matching 1 % and one matching 50 %. Run with \`bun run bench:filters\`.\n\n`;
  // A new run goes at the end of this heading's part of the file.
  const at = text.indexOf(`${heading}\n`);
  if (at < 0) writeFileSync(file, `${text.trimEnd()}\n\n${intro}${section}`);
  else {
    const next = text.indexOf("\n## ", at + heading.length);
    const end = next < 0 ? text.length : next + 1;
    writeFileSync(file, `${text.slice(0, end).trimEnd()}\n\n${section}\n${text.slice(end)}`);
  }
}
