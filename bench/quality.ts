/**
 * Recall quality on LoCoMo conversations (evaluation only: the data is CC BY-NC 4.0 and is never
 * copied into this repository). Every dialogue turn becomes one memory, `"<speaker>: <text>"`
 * (plus ` [shares <blip_caption>]` when the turn shares an image); every question of categories
 * 1–4 is asked, and a question's evidence turns (`D<session>:<turn>`) are looked for in the answer.
 *
 * Real processes on 127.0.0.1, as in bench/sync.ts: a VPS (`dionysus vps serve`) on a fresh
 * PostgreSQL database, and one store per conversation (its own VPS user and its own edge daemon
 * and data dir, logged in with that user's API key). Every mode goes through the edge's
 * `POST /v1/recall`:
 *
 * - local keyword, semantic and hybrid (`route: local`; semantic and hybrid with the built-in
 *   embedder's vectors kept on the device);
 * - VPS keyword, semantic and hybrid (`route: vps`, builtin embedder), once the VPS has embedded
 *   every memory.
 *
 * As a reference, raw FTS5 bm25 on an in-memory SQLite table (`porter unicode61`) on the same
 * turns, the question's words OR-ed: all of them, and without the edge's stopwords. VPS hybrid is
 * also asked with limit 10, since it fuses 3 × limit candidates from each list (the top 10 differs).
 *
 * Metrics: evidence recall@1/5/10/20 (share of a question's evidence turns in the top k, averaged
 * over questions), hit@10 (at least one evidence turn in the top 10), per category and overall,
 * and p50/p95 latency per mode.
 *
 *   bun run bench:quality --data DIR        # DIR holds LoCoMo conversations as JSON files
 *
 * Prints a Markdown table and adds a dated entry under "Recall quality (LoCoMo dev)" in
 * bench/RESULTS.md.
 */
import { Database } from "bun:sqlite";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { queryTokens, toFtsQuery } from "../src/core/query.ts";
import { readTime } from "../src/core/time-query.ts";
import { VERSION } from "../src/core/version.ts";
import { STOPWORDS } from "../src/edge/store/sqlite/recall-plan.ts";
import { createCluster, type EdgeDevice } from "../tests/helpers/cluster.ts";
import { cliJson, tempDir } from "../tests/helpers/harness.ts";
import { appendToSection } from "./results-file.ts";

process.env.TEST_DATABASE_URL ??= "postgres://dionysus:dionysus@127.0.0.1:5432/dionysus_test";

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    data: { type: "string" },
    "no-results": { type: "boolean", default: false },
    /** Only the local modes: no VPS modes, no waiting for the VPS to embed. */
    local: { type: "boolean", default: false },
  },
  strict: true,
});
if (!args.data) {
  console.error("usage: bun run bench:quality --data DIR  (DIR holds LoCoMo conversations as JSON)");
  process.exit(2);
}
const DATA_DIR = args.data;
const LIMIT = 20;
/** The clock relative time phrases are read against: the real one, as the API reads them. */
const NOW = new Date();
const KS = [1, 5, 10, 20] as const;
const CATEGORIES = [1, 2, 3, 4] as const;
const CATEGORY_NAMES: Record<number, string> = {
  1: "multi-hop",
  2: "temporal",
  3: "open-domain",
  4: "single-hop",
};

// ---- data ----------------------------------------------------------------------------------

interface Turn {
  speaker: string;
  dia_id: string;
  text: string;
  blip_caption?: string;
}
interface Qa {
  question: string;
  evidence?: string[];
  category: number;
}
interface Conversation {
  name: string;
  /** `occurredAt`: the session's date and time, as a dated conversation is imported. */
  turns: { diaId: string; content: string; occurredAt?: string }[];
  /** `timed`: the question names a time core/time-query.ts reads (against the real clock). */
  questions: { question: string; category: number; evidence: string[]; timed: boolean }[];
  /** Evidence strings that named no turn of the conversation (after the fixes). */
  unknownEvidence: number;
  /** Questions of categories 1–4 left out because none of their evidence names a turn. */
  noEvidence: number;
}

/** Evidence ids as written, split on separators, with `D:11:26` read as `D11:26`. */
function parseEvidence(raw: string[]): string[] {
  const out: string[] = [];
  for (const item of raw) {
    for (const part of item.split(/[;,\s]+/)) {
      const m = /^D:?(\d+):(\d+)$/.exec(part.trim());
      if (m) out.push(`D${Number(m[1])}:${Number(m[2])}`);
    }
  }
  return [...new Set(out)];
}

const MONTHS = [
  "january",
  "february",
  "march",
  "april",
  "may",
  "june",
  "july",
  "august",
  "september",
  "october",
  "november",
  "december",
];

/** A session's `"1:56 pm on 8 May, 2023"` as ISO 8601 (read as UTC), or undefined. */
export function sessionTime(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const m = /^(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})$/i.exec(raw.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[5]!.toLowerCase());
  if (month < 0) return undefined;
  const hour = (Number(m[1]) % 12) + (m[3]!.toLowerCase() === "pm" ? 12 : 0);
  return new Date(Date.UTC(Number(m[6]), month, Number(m[4]), hour, Number(m[2]))).toISOString();
}

function loadConversation(file: string): Conversation {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & { qa: Qa[] };
  const sessions = Object.keys(raw)
    .map((k) => /^session_(\d+)$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null && Array.isArray(raw[m[0]]))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const turns: Conversation["turns"] = [];
  for (const s of sessions) {
    const occurredAt = sessionTime(raw[`session_${s}_date_time`]);
    for (const t of raw[`session_${s}`] as Turn[]) {
      const shares = t.blip_caption ? ` [shares ${t.blip_caption}]` : "";
      turns.push({
        diaId: t.dia_id,
        content: `${t.speaker}: ${t.text}${shares}`,
        ...(occurredAt ? { occurredAt } : {}),
      });
    }
  }
  const known = new Set(turns.map((t) => t.diaId));
  let unknownEvidence = 0;
  let noEvidence = 0;
  const questions: Conversation["questions"] = [];
  for (const q of raw.qa) {
    if (!CATEGORIES.includes(q.category as 1)) continue;
    const parsed = parseEvidence(q.evidence ?? []);
    const evidence = parsed.filter((e) => known.has(e));
    unknownEvidence += parsed.length - evidence.length;
    if (evidence.length === 0) {
      noEvidence++;
      continue;
    }
    const question = String(q.question);
    questions.push({
      question,
      category: q.category,
      evidence,
      timed: readTime(question, NOW) !== undefined,
    });
  }
  return { name: basename(file, ".json"), turns, questions, unknownEvidence, noEvidence };
}

// ---- measuring ---------------------------------------------------------------------------

type Ranked = string[]; // dia ids, best first
interface Score {
  category: number;
  timed: boolean;
  recall: Record<(typeof KS)[number], number>;
  hit10: boolean;
}

function score(evidence: string[], ranked: Ranked, category: number, timed: boolean): Score {
  const found = (k: number) => {
    const top = new Set(ranked.slice(0, k));
    return evidence.filter((e) => top.has(e)).length;
  };
  const recall = Object.fromEntries(KS.map((k) => [k, found(k) / evidence.length])) as Score["recall"];
  return { category, timed, recall, hit10: found(10) > 0 };
}

interface ModeResult {
  scores: Score[];
  latencies: number[];
  routed: Record<string, number>;
  degraded: number;
  reasons: Set<string>;
  empty: number;
}
const newResult = (): ModeResult => ({
  scores: [],
  latencies: [],
  routed: {},
  degraded: 0,
  reasons: new Set(),
  empty: 0,
});

type RecallBody = {
  results: { memory: { id: string } }[];
  routed: string;
  degraded?: boolean;
  reason?: string;
};

const MODES = [
  { key: "raw", label: "raw FTS5 bm25, every word (reference)" },
  { key: "raw-stop", label: "raw FTS5 bm25, stopwords dropped (reference)" },
  { key: "local-keyword", label: "local keyword (edge)", mode: "keyword", route: "local" },
  {
    key: "local-keyword-off",
    label: "local keyword, time off",
    mode: "keyword",
    route: "local",
    time: "off",
  },
  { key: "local-semantic", label: "local semantic (edge)", mode: "semantic", route: "local" },
  { key: "local-hybrid", label: "local hybrid (edge)", mode: "hybrid", route: "local" },
  { key: "local-hybrid-off", label: "local hybrid, time off", mode: "hybrid", route: "local", time: "off" },
  {
    key: "local-keyword-filter",
    label: "local keyword, time filter",
    mode: "keyword",
    route: "local",
    time: "filter",
  },
  { key: "vps-keyword", label: "VPS keyword", mode: "keyword", route: "vps" },
  { key: "vps-semantic", label: "VPS semantic (builtin embedder)", mode: "semantic", route: "vps" },
  { key: "vps-hybrid", label: "VPS hybrid (builtin embedder)", mode: "hybrid", route: "vps" },
  { key: "vps-hybrid-off", label: "VPS hybrid, time off", mode: "hybrid", route: "vps", time: "off" },
  // Hybrid fuses 3 × limit (at least 30) candidates from each list, so the limit changes the top 10.
  { key: "vps-hybrid-10", label: "VPS hybrid, limit 10", mode: "hybrid", route: "vps", limit: 10 },
] as const;
const limitOf = (m: (typeof MODES)[number]) => ("limit" in m ? m.limit : LIMIT);
const timeOf = (m: (typeof MODES)[number]) => ("time" in m ? m.time : undefined);
/** Modes run: with `--local`, the references and the local modes only. */
const runs = (m: (typeof MODES)[number]) => !args.local || !("route" in m) || m.route === "local";
type ModeKey = (typeof MODES)[number]["key"];

const percentile = (sorted: number[], p: number) =>
  sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const pct = (x: number) => (Number.isNaN(x) ? "–" : (100 * x).toFixed(1));
const msFmt = (ms: number) => (ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`);

function mean(xs: number[]): number {
  return xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(200);
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** The question's words OR-ed, without the edge's stopwords (as the edge plans it, unless every
 * word is a stopword). */
function withoutStopwords(question: string): string | undefined {
  const all = queryTokens(question);
  const kept = all.filter((t) => !STOPWORDS.has(t));
  const tokens = kept.length > 0 ? kept : all.slice(0, 2);
  return tokens.length === 0 ? undefined : tokens.map((t) => `"${t}"`).join(" OR ");
}

/** Raw bm25 over the conversation's turns: one FTS5 table (porter unicode61), OR-ed words. */
function rawBm25(
  conv: Conversation,
  into: ModeResult,
  toMatch: (question: string) => string | undefined,
): void {
  const db = new Database(":memory:");
  try {
    db.run("CREATE VIRTUAL TABLE t USING fts5 (dia_id UNINDEXED, content, tokenize = 'porter unicode61')");
    const insert = db.prepare("INSERT INTO t (dia_id, content) VALUES (?, ?)");
    db.transaction(() => {
      for (const turn of conv.turns) insert.run(turn.diaId, turn.content);
    })();
    const search = db.prepare<{ dia_id: string }, [string, number]>(
      "SELECT dia_id FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?",
    );
    for (const q of conv.questions) {
      const match = toMatch(q.question);
      const t0 = performance.now();
      const ranked = match ? search.all(match, LIMIT).map((r) => r.dia_id) : [];
      into.latencies.push(performance.now() - t0);
      if (ranked.length === 0) into.empty++;
      into.scores.push(score(q.evidence, ranked, q.category, q.timed));
    }
  } finally {
    db.close();
  }
}

// ---- run ---------------------------------------------------------------------------------

if (!existsSync(DATA_DIR)) {
  console.error(`bench:quality: no folder ${DATA_DIR}`);
  process.exit(2);
}
const files = readdirSync(DATA_DIR)
  .filter((f) => f.endsWith(".json"))
  .sort();
if (files.length === 0) {
  console.error(`no .json files in ${DATA_DIR}`);
  process.exit(2);
}
const conversations = files.map((f) => loadConversation(join(DATA_DIR, f)));
const totalTurns = conversations.reduce((n, c) => n + c.turns.length, 0);
const totalQuestions = conversations.reduce((n, c) => n + c.questions.length, 0);
console.log(
  `${conversations.length} conversations (${conversations.map((c) => c.name).join(", ")}), ${totalTurns} turns, ${totalQuestions} questions (categories 1–4)`,
);

const results = Object.fromEntries(MODES.map((m) => [m.key, newResult()])) as Record<ModeKey, ModeResult>;
for (const conv of conversations) {
  rawBm25(conv, results.raw, toFtsQuery);
  rawBm25(conv, results["raw-stop"], withoutStopwords);
}

const started = new Date();
const startedMs = performance.now();
const loadAtStart = os.loadavg()[0]!;
const adminDir = tempDir("dionysus-quality-admin-");
const cluster = await createCluster({
  vpsEnv: { DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "1000000", DIONYSUS_VPS_USER_RATE_LIMIT_PER_MIN: "1000000" },
});
const notes: string[] = [];
let pgVersion = "";
try {
  const [pg] = await cluster.sql<{ server_version: string }>("SHOW server_version");
  pgVersion = pg!.server_version;
  const dbArgs = ["--database-url", cluster.databaseUrl, "--data-dir", adminDir.path];

  // One VPS user and one edge device per conversation; every turn written through the edge API.
  const stores: { conv: Conversation; dev: EdgeDevice; user: string; idToDia: Map<string, string> }[] = [];
  const writeStart = performance.now();
  for (const conv of conversations) {
    const user = `locomo-${conv.name}`;
    await cliJson(["vps", "user", "add", user, "--password", "correct horse battery", ...dbArgs]);
    const { key } = await cliJson<{ key: string }>(["vps", "key", "create", user, ...dbArgs]);
    const dev = await cluster.device(user, { DIONYSUS_SYNC_INTERVAL_S: "5" }, { login: false });
    const login = await dev.cli(["login", cluster.vpsUrl, "--api-key", key, "--name", user, "--json"]);
    if (login.code !== 0) throw new Error(`login of ${user} failed: ${login.stderr}`);
    const idToDia = new Map<string, string>();
    await forEachLimit(conv.turns, 8, async (turn) => {
      const r = await dev.api<{ id: string }>("POST", "/v1/memories", {
        content: turn.content,
        ...(turn.occurredAt ? { occurred_at: turn.occurredAt } : {}),
      });
      if (r.status >= 300)
        throw new Error(`${user} POST /v1/memories: ${r.status} ${JSON.stringify(r.body)}`);
      idToDia.set(r.body.id, turn.diaId);
    });
    stores.push({ conv, dev, user, idToDia });
    console.log(`${user}: ${conv.turns.length} memories written`);
  }
  const writeMs = performance.now() - writeStart;

  // Wait until the VPS holds every memory and has embedded each one.
  const embedStart = performance.now();
  for (const s of args.local ? [] : stores) {
    await waitFor(
      async () => {
        const [row] = await cluster.sql<{ memories: string; embedded: string; pending: string }>(
          `select
             (select count(*) from memories m where m.user_id = u.id and not m.deleted) as memories,
             (select count(*) from embeddings e where e.user_id = u.id) as embedded,
             (select count(*) from jobs j where j.user_id = u.id and j.kind = 'embed'
                and j.status in ('queued', 'running')) as pending
           from users u where u.name = $1`,
          [s.user],
        );
        const want = s.conv.turns.length;
        return row &&
          Number(row.memories) === want &&
          Number(row.embedded) >= want &&
          Number(row.pending) === 0
          ? true
          : undefined;
      },
      30 * 60_000,
      `the VPS to hold and embed ${s.user}'s memories`,
    );
  }
  const embedMs = performance.now() - embedStart;
  const [failed] = await cluster.sql<{ n: string }>("select count(*) as n from jobs where status = 'failed'");
  notes.push(
    `${totalTurns} memories written through the edges' local APIs in ${(writeMs / 1000).toFixed(1)} s; the VPS held and had embedded them all ${(embedMs / 1000).toFixed(1)} s later (failed jobs: ${failed?.n ?? "?"}).`,
  );

  // Ask every question in every mode, one request at a time.
  for (const m of MODES) {
    if (m.key === "raw" || m.key === "raw-stop" || !runs(m)) continue;
    const into = results[m.key];
    for (const s of stores) {
      for (const q of s.conv.questions) {
        const t0 = performance.now();
        const r = await s.dev.api<RecallBody>("POST", "/v1/recall", {
          query: q.question,
          limit: limitOf(m),
          mode: m.mode,
          route: m.route,
          ...(timeOf(m) ? { time: timeOf(m) } : {}),
        });
        into.latencies.push(performance.now() - t0);
        if (r.status !== 200)
          throw new Error(`${s.user} ${m.key} recall: ${r.status} ${JSON.stringify(r.body)}`);
        into.routed[r.body.routed] = (into.routed[r.body.routed] ?? 0) + 1;
        if (r.body.degraded) into.degraded++;
        if (r.body.reason) into.reasons.add(r.body.reason);
        const ranked = r.body.results.map((h) => s.idToDia.get(h.memory.id) ?? `?${h.memory.id}`);
        if (ranked.length === 0) into.empty++;
        into.scores.push(score(q.evidence, ranked, q.category, q.timed));
      }
    }
    console.log(`${m.key}: ${into.scores.length} questions asked`);
  }
} finally {
  await cluster.close();
  adminDir.cleanup();
}

// ---- report ------------------------------------------------------------------------------

const summary = (scores: Score[]) => ({
  n: scores.length,
  r: KS.map((k) => mean(scores.map((s) => s.recall[k]))),
  h10: mean(scores.map((s) => (s.hit10 ? 1 : 0))),
});

const RUN = MODES.filter(runs);
const mainRows = RUN.map((m) => {
  const res = results[m.key];
  const all = summary(res.scores);
  const lat = [...res.latencies].sort((a, b) => a - b);
  const r = all.r.map((x, i) => (KS[i]! > limitOf(m) ? "–" : pct(x)));
  return `| ${m.label} | ${r.join(" | ")} | ${pct(all.h10)} | ${msFmt(percentile(lat, 50))} | ${msFmt(percentile(lat, 95))} |`;
});
const mainTable = [
  `| mode (limit ${LIMIT}, ${totalQuestions} questions) | R@1 | R@5 | R@10 | R@20 | H@10 | p50 | p95 |`,
  "|---|---|---|---|---|---|---|---|",
  ...mainRows,
].join("\n");

const catHeader = CATEGORIES.map((c) => {
  const n = results.raw.scores.filter((s) => s.category === c).length;
  return `${c} ${CATEGORY_NAMES[c]} (${n})`;
});
const catTable = [
  `| R@10 / H@10 by category | ${catHeader.join(" | ")} |`,
  `|---|${CATEGORIES.map(() => "---").join("|")}|`,
  ...RUN.map((m) => {
    const cells = CATEGORIES.map((c) => {
      const s = summary(results[m.key].scores.filter((x) => x.category === c));
      return `${pct(s.r[2]!)} / ${pct(s.h10)}`;
    });
    return `| ${m.label} | ${cells.join(" | ")} |`;
  }),
].join("\n");

// The questions that name a time, and category 2, with time used (default boost) and off.
const subsets: { label: string; keep: (s: Score) => boolean }[] = [
  { label: "all", keep: () => true },
  { label: "2 temporal", keep: (s) => s.category === 2 },
  { label: "name a time", keep: (s) => s.timed },
  { label: "name no time", keep: (s) => !s.timed },
];
const timeTable = [
  `| R@10 / H@10 | ${subsets.map((x) => `${x.label} (${results.raw.scores.filter(x.keep).length})`).join(" | ")} |`,
  `|---|${subsets.map(() => "---").join("|")}|`,
  ...RUN.map((m) => {
    const cells = subsets.map((x) => {
      const s = summary(results[m.key].scores.filter(x.keep));
      return `${pct(s.r[2]!)} / ${pct(s.h10)}`;
    });
    return `| ${m.label} | ${cells.join(" | ")} |`;
  }),
].join("\n");
let timedQuestions = 0;
let timedEmpty = 0;
const timedByCategory: Record<number, number> = {};
for (const c of conversations) {
  const times = c.turns.map((t) => (t.occurredAt ? Date.parse(t.occurredAt) : Number.NaN));
  for (const q of c.questions) {
    const r = readTime(q.question, NOW);
    if (!r) continue;
    timedQuestions++;
    timedByCategory[q.category] = (timedByCategory[q.category] ?? 0) + 1;
    const [a, b] = [Date.parse(r.since), Date.parse(r.until)];
    if (!times.some((t) => t >= a && t < b)) timedEmpty++;
  }
}
notes.push(
  `Time in questions: every turn's occurred_at is its session's date and time (read as UTC). ${timedQuestions} questions name a time core/time-query.ts reads (${Object.entries(
    timedByCategory,
  )
    .map(([c, n]) => `category ${c}: ${n}`)
    .join(
      ", ",
    )}); the API reads relative phrases ("last week", "yesterday", "in May") against the real clock (${NOW.toISOString().slice(0, 10)}), so for ${timedEmpty} of them the window holds no memory of the conversation and the ranking is the one without it (as with time off).`,
);

const r10 = (k: ModeKey) => 100 * summary(results[k].scores).r[2]!;
const h10 = (k: ModeKey) => 100 * summary(results[k].scores).h10;
const localR10 = r10("local-keyword");
const hybridR10 = r10("vps-hybrid");
const hybrid10R10 = r10("vps-hybrid-10");
const gapLocal = 66 - localR10;
const gapHybrid = localR10 + 2 - hybridR10;
const gapHybrid10 = localR10 + 2 - hybrid10R10;
const goals = [
  `Goals: local keyword R@10 ≥ 66: ${localR10.toFixed(1)}, ${gapLocal <= 0 ? "met" : `${gapLocal.toFixed(1)} points short`}. VPS hybrid R@10 ≥ local keyword + 2 (${(localR10 + 2).toFixed(1)}): ${hybridR10.toFixed(1)} at limit 20, ${gapHybrid <= 0 ? "met" : `${gapHybrid.toFixed(1)} points short`}; ${hybrid10R10.toFixed(1)} at limit 10, ${gapHybrid10 <= 0 ? "met" : `${gapHybrid10.toFixed(1)} points short`}.`,
];

const describe = (k: ModeKey) => {
  const r = results[k];
  const routed = Object.entries(r.routed)
    .map(([w, n]) => `${w} ${n}`)
    .join(", ");
  const reasons = r.reasons.size > 0 ? `; reason: "${[...r.reasons].join('", "')}"` : "";
  return `${k}: routed ${routed}; degraded ${r.degraded}${reasons}; empty answers ${r.empty}`;
};
const skipped = conversations.reduce((n, c) => n + c.noEvidence, 0);
const unknown = conversations.reduce((n, c) => n + c.unknownEvidence, 0);
notes.push(
  `Data: ${conversations.length} LoCoMo conversations (${conversations.map((c) => c.name).join(", ")}), ${totalTurns} turns (one memory each), ${totalQuestions} questions of categories 1–4 (${skipped} left out for naming no turn; ${unknown} evidence ids naming no turn ignored). One VPS user and one edge per conversation.`,
  `How the edge answered: ${RUN.filter((m) => m.key !== "raw" && m.key !== "raw-stop")
    .map((m) => describe(m.key))
    .join(". ")}.`,
  ...(args.local
    ? [`Local modes only (--local): no VPS modes were asked.`]
    : [
        `Issue's figures (R@10 / H@10): raw bm25 61.0 / 67.1, local keyword about 61 / 67, VPS keyword 53.6 / 59.3, VPS semantic 38.1 / 42.2, VPS hybrid 49.8 / 55.4. This run: raw bm25 ${r10("raw").toFixed(1)} / ${h10("raw").toFixed(1)} with every word and ${r10("raw-stop").toFixed(1)} / ${h10("raw-stop").toFixed(1)} with stopwords dropped, local keyword ${localR10.toFixed(1)} / ${h10("local-keyword").toFixed(1)}, VPS keyword ${r10("vps-keyword").toFixed(1)} / ${h10("vps-keyword").toFixed(1)}, VPS semantic ${r10("vps-semantic").toFixed(1)} / ${h10("vps-semantic").toFixed(1)}, VPS hybrid ${hybridR10.toFixed(1)} / ${h10("vps-hybrid").toFixed(1)} (limit 20) and ${r10("vps-hybrid-10").toFixed(1)} / ${h10("vps-hybrid-10").toFixed(1)} (limit 10).`,
      ]),
  `Latency is the whole HTTP round trip from this script (raw bm25: the in-process query), one request at a time; the run took ${((performance.now() - startedMs) / 60_000).toFixed(1)} min.`,
  ...(args.local ? [] : goals),
);

const cpus = os.cpus();
const header = `### ${started.toISOString().slice(0, 16).replace("T", " ")} UTC — Dionysus ${VERSION}, Bun ${Bun.version}, PostgreSQL ${pgVersion}, ${os.platform()} ${os.arch()}, ${os.availableParallelism()} CPUs (${cpus[0]?.model ?? "unknown"}), ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, load average ${loadAtStart.toFixed(1)} at start and ${os.loadavg()[0]!.toFixed(1)} at the end`;
const entry = `${header}\n\nEvidence recall at k (%), hit@10 (%), latency:\n\n${mainTable}\n\n${catTable}\n\n${timeTable}\n\n${notes.map((n) => `- ${n}`).join("\n")}\n`;
console.log(`\n${entry}`);
if (!args["no-results"]) appendResults(entry);

/** Adds `entry` at the end of the "Recall quality (LoCoMo dev)" section of bench/RESULTS.md (made if absent). */
function appendResults(entry: string): void {
  const intro =
    "Evidence recall on LoCoMo conversations (CC BY-NC 4.0, used for evaluation only and not kept here; only aggregate figures are). Each dialogue turn is one memory, each question of categories 1–4 is asked through the edge's `POST /v1/recall` (limit 20), and R@k is the share of the question's evidence turns in the top k, averaged over questions; H@10 is the share of questions with at least one evidence turn in the top 10. One VPS user and one edge per conversation, real processes on 127.0.0.1. Goals: local keyword R@10 ≥ 66; VPS hybrid R@10 ≥ local keyword + 2. Run with `bun run bench:quality --data DIR`.";
  appendToSection("## Recall quality (LoCoMo dev)", intro, entry);
}
