/**
 * VPS search quality in process, next to the edge's: the LoCoMo conversations of
 * bench/quality.ts pushed to an in-process VPS (PGlite, or PostgreSQL with --database-url) and
 * embedded by its worker, then every question asked of the VPS search service (the code behind
 * `POST /v1/search`) and of an edge store (`recall`, as bench/quality-replay.ts), both with each
 * turn's `occurred_at` the session's date and time. Takes about a minute instead of the full
 * benchmark's minutes, so it is the tool to compare VPS ranking variants; `bun run bench:quality`
 * stays the measure of record. Evaluation only: the data (CC BY-NC 4.0) is read from DIR, never
 * copied.
 *
 *   bun run bench/vps-quality-replay.ts --data DIR [--modes keyword,hybrid] [--time boost|off]
 *     [--database-url URL] [--no-edge] [--per-category] [--dump]
 *
 * Prints R@10 / H@10 (%, categories 1–4) per side and mode, and for the questions that name a time;
 * `--dump` prints each question where the two sides found different evidence, with both top 10s.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { VpsConfig } from "../src/core/config.ts";
import { HlcClock } from "../src/core/hlc.ts";
import { API_KEY_GRANT, TokenResponse } from "../src/core/protocol/auth.ts";
import type { TimeUse } from "../src/core/time-query.ts";
import { readTime, timeRecall } from "../src/core/time-query.ts";
import { uuidv7 } from "../src/core/uuid.ts";
import { createSqliteStore } from "../src/edge/store/sqlite/index.ts";
import { createVpsDatabase } from "../src/vps/db/database.ts";
import { createVpsApp } from "../src/vps/http/app.ts";
import { createVpsInstance } from "../src/vps/instance.ts";

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    data: { type: "string" },
    modes: { type: "string", default: "keyword,hybrid" },
    time: { type: "string", default: "boost" },
    "database-url": { type: "string" },
    "no-edge": { type: "boolean", default: false },
    "per-category": { type: "boolean", default: false },
    dump: { type: "boolean", default: false },
  },
  strict: true,
});
if (!args.data) {
  console.error(
    "usage: bun run bench/vps-quality-replay.ts --data DIR  (DIR holds LoCoMo conversations as JSON)",
  );
  process.exit(2);
}
const modes = args.modes.split(",") as ("keyword" | "semantic" | "hybrid")[];
const timeUse = args.time as TimeUse;
const NOW = new Date();

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

function parseEvidence(raw: string[]): string[] {
  const out: string[] = [];
  for (const item of raw)
    for (const part of item.split(/[;,\s]+/)) {
      const m = /^D:?(\d+):(\d+)$/.exec(part.trim());
      if (m) out.push(`D${Number(m[1])}:${Number(m[2])}`);
    }
  return [...new Set(out)];
}

const MONTHS = "january february march april may june july august september october november december".split(
  " ",
);
/** A session's `"1:56 pm on 8 May, 2023"` as ISO 8601 (UTC), as bench/quality.ts reads it. */
function sessionTime(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const m = /^(\d{1,2}):(\d{2})\s*(am|pm)\s+on\s+(\d{1,2})\s+([a-z]+),?\s+(\d{4})$/i.exec(raw.trim());
  if (!m) return undefined;
  const month = MONTHS.indexOf(m[5]!.toLowerCase());
  if (month < 0) return undefined;
  const hour = (Number(m[1]) % 12) + (m[3]!.toLowerCase() === "pm" ? 12 : 0);
  return new Date(Date.UTC(Number(m[6]), month, Number(m[4]), hour, Number(m[2]))).toISOString();
}

function load(file: string) {
  const raw = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & { qa: Qa[] };
  const sessions = Object.keys(raw)
    .map((k) => /^session_(\d+)$/.exec(k))
    .filter((m): m is RegExpExecArray => m !== null && Array.isArray(raw[m[0]]))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const turns: { diaId: string; content: string; occurredAt?: string }[] = [];
  for (const s of sessions) {
    const occurredAt = sessionTime(raw[`session_${s}_date_time`]);
    for (const t of raw[`session_${s}`] as Turn[])
      turns.push({
        diaId: t.dia_id,
        content: `${t.speaker}: ${t.text}${t.blip_caption ? ` [shares ${t.blip_caption}]` : ""}`,
        ...(occurredAt ? { occurredAt } : {}),
      });
  }
  const known = new Set(turns.map((t) => t.diaId));
  const questions = raw.qa
    .filter((q) => q.category >= 1 && q.category <= 4)
    .map((q) => ({
      question: String(q.question),
      category: q.category,
      evidence: parseEvidence(q.evidence ?? []).filter((e) => known.has(e)),
      timed: readTime(String(q.question), NOW) !== undefined,
    }))
    .filter((q) => q.evidence.length > 0);
  return { name: basename(file, ".json"), turns, questions };
}

type Acc = { recall: number; hit: number; n: number };
const totals = new Map<string, Acc>();
const add = (key: string, r: number, h: boolean) => {
  const a = totals.get(key) ?? { recall: 0, hit: 0, n: 0 };
  a.recall += r;
  a.hit += h ? 1 : 0;
  a.n++;
  totals.set(key, a);
};
const score = (key: string, q: { evidence: string[]; category: number; timed: boolean }, top: string[]) => {
  const found = q.evidence.filter((e) => top.includes(e)).length;
  for (const k of [key, `${key} c${q.category}`, ...(q.timed ? [`${key} timed`] : [])])
    add(k, found / q.evidence.length, found > 0);
};
const latencies: number[] = [];

const dir = mkdtempSync(join(tmpdir(), "dionysus-vps-replay-"));
const database = await createVpsDatabase({
  data_dir: dir,
  ...(args["database-url"] ? { database_url: args["database-url"] } : {}),
});
const cfg = VpsConfig.parse({
  data_dir: dir,
  rate_limit_per_min: 1_000_000,
  ...(args["database-url"] ? { database_url: args["database-url"] } : {}),
});
const services = await createVpsInstance(cfg, database, { log: () => {} });
const app = createVpsApp({ vps: services, clientIp: () => "127.0.0.1", adminToken: "replay-admin-token" });
const req = (path: string, init: RequestInit) => Promise.resolve(app.request(`http://vps.test${path}`, init));
try {
  const files = readdirSync(args.data)
    .filter((f) => f.endsWith(".json"))
    .sort();
  for (const file of files) {
    const conv = load(join(args.data, file));
    const name = `replay-${conv.name}-${crypto.randomUUID().slice(0, 6)}`;
    await services.admin.addUser(name, "correct horse battery");
    const key = (await services.admin.createKey(name)).key;
    const tok = TokenResponse.parse(
      await (
        await req("/v1/auth/token", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            grant_type: API_KEY_GRANT,
            api_key: key,
            device_id: `d-${name}`,
            device_name: "Replay",
          }),
        })
      ).json(),
    );
    const headers = { authorization: `Bearer ${tok.access_token}`, "content-type": "application/json" };
    const clock = new HlcClock(`d-${name}`);
    const diaOf = new Map<string, string>();
    const mutations = conv.turns.map((t, i) => {
      const id = uuidv7();
      diaOf.set(id, t.diaId);
      const at = new Date().toISOString();
      return {
        mutation_id: i + 1,
        op: "create" as const,
        id,
        hlc: clock.tick(),
        data: {
          content: t.content,
          kind: "episodic",
          tags: [],
          metadata: {},
          created_at: at,
          updated_at: at,
          occurred_at: t.occurredAt ?? null,
        },
      };
    });
    for (let i = 0; i < mutations.length; i += 500) {
      const res = await req("/v1/sync/push", {
        method: "POST",
        headers,
        body: JSON.stringify({ mutations: mutations.slice(i, i + 500) }),
      });
      if (res.status !== 200) throw new Error(`push: ${res.status} ${await res.text()}`);
    }
    await services.heavy.worker.drain();
    const [{ id: userId }] = (await database.db
      .selectFrom("users")
      .select("id")
      .where("name", "=", name)
      .execute()) as [{ id: string }];

    const edge = args["no-edge"]
      ? undefined
      : createSqliteStore({ path: join(dir, `${conv.name}.db`), integrityCheck: false });
    const edgeDia = new Map<string, string>();
    if (edge)
      for (const t of conv.turns) {
        const m = edge.create({
          content: t.content,
          kind: "episodic",
          tags: [],
          metadata: {},
          ...(t.occurredAt ? { occurred_at: t.occurredAt } : {}),
        });
        edgeDia.set(m.id, t.diaId);
      }

    for (const mode of modes)
      for (const q of conv.questions) {
        const t0 = performance.now();
        const r = await services.heavy.search.search(userId, {
          query: q.question,
          mode,
          limit: 10,
          time: timeUse,
        });
        latencies.push(performance.now() - t0);
        const vpsTop = r.results.map((h) => diaOf.get(h.memory.id)!);
        score(`vps ${mode}`, q, vpsTop);
        if (edge) {
          const time = timeUse === "off" ? undefined : timeRecall(readTime(q.question, new Date()), timeUse);
          const hits = edge.recall(q.question, 10, undefined, mode, time);
          const edgeTop = hits.map((h) => edgeDia.get(h.memory.id)!);
          score(`edge ${mode}`, q, edgeTop);
          const found = (top: string[]) => q.evidence.filter((e) => top.includes(e)).length;
          if (args.dump && found(edgeTop) !== found(vpsTop))
            console.log(
              JSON.stringify({
                mode,
                q: q.question,
                timed: q.timed,
                evidence: q.evidence,
                edge: hits.map((h) => `${edgeDia.get(h.memory.id)}:${h.score.toFixed(3)}`),
                vps: r.results.map((h) => `${diaOf.get(h.memory.id)}:${h.score.toFixed(3)}`),
              }),
            );
        }
      }
    edge?.close();
  }
} finally {
  await services.stop();
  await database.close();
  rmSync(dir, { recursive: true, force: true });
}
const f = (a: Acc) => `${((100 * a.recall) / a.n).toFixed(1)} / ${((100 * a.hit) / a.n).toFixed(1)}`;
for (const side of ["edge", "vps"])
  for (const mode of modes) {
    const a = totals.get(`${side} ${mode}`);
    if (!a) continue;
    const timed = totals.get(`${side} ${mode} timed`);
    console.log(
      `${`${side} ${mode}`.padEnd(13)} R@10 / H@10 ${f(a)}  (${a.n} questions)${timed ? `; naming a time ${f(timed)} (${timed.n})` : ""}`,
    );
    if (args["per-category"])
      for (const c of [1, 2, 3, 4]) {
        const x = totals.get(`${side} ${mode} c${c}`);
        if (x) console.log(`  category ${c}: ${f(x)} (${x.n})`);
      }
  }
latencies.sort((a, b) => a - b);
console.log(
  `VPS search latency in process: p50 ${latencies[Math.floor(latencies.length / 2)]?.toFixed(1)} ms, p95 ${latencies[Math.floor(latencies.length * 0.95)]?.toFixed(1)} ms`,
);
