/**
 * Recall quality in process: the LoCoMo conversations of bench/quality.ts replayed through the
 * edge store's own `recall` (the code behind `POST /v1/recall` with `route: local`), without
 * daemons, a VPS or PostgreSQL. It reproduces the API's local figures exactly and takes seconds,
 * so it is the tool to choose between variants; `bun run bench:quality` stays the measure of
 * record. Evaluation only: the data (CC BY-NC 4.0) is read from DIR, never copied.
 *
 *   bun run bench/quality-replay.ts --data DIR [--modes keyword,semantic,hybrid] [--per-category]
 *
 * Prints R@10 / H@10 (%, categories 1–4) per mode.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import type { LocalRecallMode } from "../src/edge/store/types.ts";

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    data: { type: "string" },
    modes: { type: "string", default: "keyword,semantic,hybrid" },
    "per-category": { type: "boolean", default: false },
  },
  strict: true,
});
if (!args.data) {
  console.error(
    "usage: bun run bench/quality-replay.ts --data DIR  (DIR holds LoCoMo conversations as JSON)",
  );
  process.exit(2);
}
const modes = args.modes.split(",") as LocalRecallMode[];

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

/** Evidence ids as written, split on separators, with `D:11:26` read as `D11:26` (as bench/quality.ts). */
function parseEvidence(raw: string[]): string[] {
  const out: string[] = [];
  for (const item of raw)
    for (const part of item.split(/[;,\s]+/)) {
      const m = /^D:?(\d+):(\d+)$/.exec(part.trim());
      if (m) out.push(`D${Number(m[1])}:${Number(m[2])}`);
    }
  return [...new Set(out)];
}

function load(file: string) {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & { qa: Qa[] };
  const sessions = Object.keys(raw)
    .map((k) => /^session_(\d+)$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null && Array.isArray(raw[m[0]]))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const turns: { diaId: string; content: string }[] = [];
  for (const s of sessions)
    for (const t of raw[`session_${s}`] as Turn[])
      turns.push({
        diaId: t.dia_id,
        content: `${t.speaker}: ${t.text}${t.blip_caption ? ` [shares ${t.blip_caption}]` : ""}`,
      });
  const known = new Set(turns.map((t) => t.diaId));
  const questions = raw.qa
    .filter((q) => q.category >= 1 && q.category <= 4)
    .map((q) => ({
      question: String(q.question),
      category: q.category,
      evidence: parseEvidence(q.evidence ?? []).filter((e) => known.has(e)),
    }))
    .filter((q) => q.evidence.length > 0);
  return { name: basename(file, ".json"), turns, questions };
}

const files = readdirSync(args.data)
  .filter((f) => f.endsWith(".json"))
  .sort();
type Acc = { recall: number; hit: number; n: number };
const acc = (): Acc => ({ recall: 0, hit: 0, n: 0 });
const totals = new Map<string, Acc>();
const add = (key: string, r: number, h: boolean) => {
  const a = totals.get(key) ?? acc();
  a.recall += r;
  a.hit += h ? 1 : 0;
  a.n++;
  totals.set(key, a);
};
const dir = mkdtempSync(join(tmpdir(), "dionysus-replay-"));
try {
  for (const file of files) {
    const conv = load(join(args.data, file));
    const store = createSqliteStore({ path: join(dir, `${conv.name}.db`), integrityCheck: false });
    const diaOf = new Map<string, string>();
    for (const t of conv.turns) {
      const m = store.create({ content: t.content, kind: "episodic", tags: [], metadata: {} });
      diaOf.set(m.id, t.diaId);
    }
    for (const mode of modes) {
      for (const q of conv.questions) {
        const top = store.recall(q.question, 10, undefined, mode).map((h) => diaOf.get(h.memory.id)!);
        const found = q.evidence.filter((e) => top.includes(e)).length;
        add(mode, found / q.evidence.length, found > 0);
        add(`${mode} c${q.category}`, found / q.evidence.length, found > 0);
      }
    }
    store.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const f = (a: Acc) => `${((100 * a.recall) / a.n).toFixed(1)} / ${((100 * a.hit) / a.n).toFixed(1)}`;
for (const mode of modes) {
  const a = totals.get(mode)!;
  console.log(`${mode.padEnd(9)} R@10 / H@10 ${f(a)}  (${a.n} questions)`);
  if (args["per-category"])
    for (const c of [1, 2, 3, 4]) {
      const x = totals.get(`${mode} c${c}`);
      if (x) console.log(`  category ${c}: ${f(x)} (${x.n})`);
    }
}
