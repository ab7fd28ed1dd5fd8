/**
 * One consolidation of a user's memories (the `consolidate` job; docs/heavy.md):
 *
 * 1. Duplicates and near-duplicates (see near-duplicates.ts), among live memories of the same
 *    kind (summaries excluded), are merged: the oldest survives with its id and content, gains the
 *    others' tags and `metadata.merged_from` (their ids); each other one becomes a tombstone with
 *    `metadata.merged_into` (the survivor's id), and its last version is kept in `memory_merges`.
 *    A memory written since it was read is left alone (it is no longer the version compared).
 * 2. The graph is refreshed: merged memories leave it, and memories whose graph is missing or
 *    older than their content (up to {@link GRAPH_REFRESH_LIMIT}) are extracted now.
 * 3. A summary memory (kind `summary`) of the memories created since the previous consolidation
 *    summary (the newest {@link SUMMARY_INPUTS} of them) is written: by the LLM when one is
 *    configured (extractive if it fails), extractive otherwise.
 *
 * Every write goes through the change feed (new seqs, pokes), so every device receives it.
 */
import { type Kysely, sql } from "kysely";
import type { HlcClock } from "../../core/hlc.ts";
import type { Memory } from "../../core/memory.ts";
import type { ChatModel } from "../../core/ports/chat-model.ts";
import type { EntityExtractor } from "../../core/ports/entity-extractor.ts";
import type { ConsolidationResult } from "../../core/protocol/heavy.ts";
import { uuidv7 } from "../../core/uuid.ts";
import { MEMORY_COLUMNS, rowToMemory } from "../db/memories.ts";
import type { MemoryRow, VpsTables } from "../db/schema.ts";
import { type GraphIn, refreshMemoryGraph } from "../jobs/extract-jobs.ts";
import { buildSummaryMessages } from "../search/prompts.ts";
import { type ServerVersion, VPS_DEVICE, writeServerVersions } from "../sync/server-write.ts";
import { findDuplicateGroups } from "./near-duplicates.ts";
import { extractiveSummary } from "./summary.ts";

/** Most memories whose graph one consolidation extracts (the rest is left to the job queue). */
export const GRAPH_REFRESH_LIMIT = 1000;
/** Most memories one summary covers (the newest). */
export const SUMMARY_INPUTS = 200;
/** Longest LLM summary kept, in characters. */
const MAX_SUMMARY_CHARS = 4000;
const MAX_TAGS = 64;

export interface ConsolidationDeps {
  db: Kysely<VpsTables>;
  /** The VPS's clock (node `vps`); its stamps order after every version it replaces. */
  clock: HlcClock;
  extractor: EntityExtractor;
  graphIn: GraphIn;
  chat?: ChatModel | undefined;
  /** Called between steps, to keep the job's heartbeat. */
  heartbeat?: () => Promise<void>;
  log?: (event: Record<string, unknown>) => void;
  now?: () => number;
}

interface Candidate {
  id: string;
  content: string;
  kind: string;
  created_at: string;
  hlc: string;
  scope: string | null;
}

export async function runConsolidation(
  deps: ConsolidationDeps,
  userId: string,
  jobId: string,
): Promise<ConsolidationResult> {
  const { db } = deps;
  const beat = deps.heartbeat ?? (async () => {});
  const nowIso = () => new Date((deps.now ?? Date.now)()).toISOString();

  // 1. merge duplicates
  const live = await sql<Candidate>`
    select id, content, kind, created_at, hlc, scope from memories
    where user_id = ${userId} and not deleted and kind <> 'summary'`.execute(db);
  const seen = new Map(live.rows.map((r) => [r.id, r]));
  // Duplicates are looked for within one kind and one scope: two assistants' memories that say
  // the same thing stay each in its own scope.
  const byKind = new Map<string, Candidate[]>();
  for (const r of live.rows) {
    const key = `${r.kind}\u0000${r.scope ?? ""}`;
    byKind.set(key, [...(byKind.get(key) ?? []), r]);
  }
  const groups = [...byKind.values()].flatMap((list) => findDuplicateGroups(list));
  await beat();

  let mergedGroups = 0;
  const tombstoned: string[] = [];
  const survivors: string[] = [];
  if (groups.length > 0) {
    const ids = groups.flatMap((g) => [g.survivor, ...g.duplicates]);
    await db.transaction().execute(async (tx) => {
      const locked = await sql<MemoryRow>`
        select ${MEMORY_COLUMNS} from memories
        where user_id = ${userId} and id = any(${ids}::text[])
        order by id
        for update`.execute(tx);
      // Only versions still as they were read: anything written meanwhile is not what was compared.
      const current = new Map(
        locked.rows
          .filter((r) => !r.deleted && r.hlc === seen.get(r.id)?.hlc)
          .map((r) => [r.id, rowToMemory({ ...r, embedding: null })]),
      );
      const versions: ServerVersion[] = [];
      const merges: Array<{ merged_id: string; survivor_id: string; merged: Memory }> = [];
      const at = nowIso();
      for (const g of groups) {
        const survivor = current.get(g.survivor);
        const dups = g.duplicates.flatMap((id) => (current.has(id) ? [current.get(id)!] : []));
        if (!survivor || dups.length === 0) continue;
        for (const d of dups) {
          deps.clock.receive(d.hlc);
          versions.push({
            id: d.id,
            content: "",
            kind: d.kind,
            tags: [],
            metadata: { merged_into: survivor.id },
            created_at: d.created_at,
            updated_at: at,
            hlc: deps.clock.tick(),
            deleted: true,
            origin_device: VPS_DEVICE,
            scope: d.scope,
            source: d.source,
            occurred_at: null,
            base_hlc: d.hlc,
          });
          merges.push({ merged_id: d.id, survivor_id: survivor.id, merged: d });
        }
        deps.clock.receive(survivor.hlc);
        const before = Array.isArray(survivor.metadata.merged_from)
          ? (survivor.metadata.merged_from as unknown[]).filter((x): x is string => typeof x === "string")
          : [];
        versions.push({
          ...survivor,
          tags: [...new Set([...survivor.tags, ...dups.flatMap((d) => d.tags)])].slice(0, MAX_TAGS),
          metadata: { ...survivor.metadata, merged_from: [...before, ...dups.map((d) => d.id)] },
          updated_at: at,
          hlc: deps.clock.tick(),
          origin_device: VPS_DEVICE,
          base_hlc: survivor.hlc,
        });
        mergedGroups++;
        survivors.push(survivor.id);
        tombstoned.push(...dups.map((d) => d.id));
      }
      if (merges.length > 0)
        await sql`
          insert into memory_merges (user_id, merged_id, survivor_id, job_id, merged)
          select ${userId}, x.merged_id, x.survivor_id, ${jobId}, x.merged
          from jsonb_to_recordset(${JSON.stringify(merges)}::jsonb) as x(merged_id text, survivor_id text, merged jsonb)
          on conflict (user_id, merged_id) do update set survivor_id = excluded.survivor_id,
            job_id = excluded.job_id, merged = excluded.merged, merged_at = now()`.execute(tx);
      await writeServerVersions(tx, userId, versions);
    });
  }
  await beat();

  // 2. refresh the graph
  let graphRefreshed = 0;
  const refresh = async (memoryId: string) => {
    const outcome = await refreshMemoryGraph(db, deps.extractor, deps.graphIn, userId, memoryId);
    if (outcome === "extracted" || outcome === "removed") graphRefreshed++;
  };
  for (const id of tombstoned) await refresh(id);
  // Memories whose graph is missing or out of date, newest first; matched here rather than joined
  // (a join's plan can turn into a scan per row when the tables' statistics are stale).
  const extracted = await sql<{ memory_id: string; content_hash: string; extractor: string }>`
    select memory_id, content_hash, extractor from graph_extracted where user_id = ${userId}`.execute(db);
  const done = new Map(extracted.rows.map((r) => [r.memory_id, r]));
  const hashes = await sql<{ id: string; hash: string }>`
    select id, md5(content) as hash from memories where user_id = ${userId} and not deleted
    order by id desc`.execute(db);
  const stale = hashes.rows
    .filter((r) => {
      const g = done.get(r.id);
      return !g || g.content_hash !== r.hash || g.extractor !== deps.extractor.id;
    })
    .slice(0, GRAPH_REFRESH_LIMIT);
  const todo = [...new Set([...survivors, ...stale.map((r) => r.id)])];
  for (let i = 0; i < todo.length; i++) {
    await refresh(todo[i]!);
    if (i % 50 === 49) await beat();
  }
  await beat();

  // 3. the summary
  const summaryId = await writeSummary(deps, userId, jobId, nowIso);
  return {
    merged_groups: mergedGroups,
    tombstoned: tombstoned.length,
    summary_memory_id: summaryId,
    graph_refreshed: graphRefreshed,
  };
}

async function writeSummary(
  deps: ConsolidationDeps,
  userId: string,
  jobId: string,
  nowIso: () => string,
): Promise<string | null> {
  const { db } = deps;
  const last = await sql<{ until: string | null }>`
    select metadata->>'covers_until' as until from memories
    where user_id = ${userId} and kind = 'summary' and not deleted and origin_device = ${VPS_DEVICE}
    order by seq desc limit 1`.execute(db);
  const since = last.rows[0]?.until ?? "";
  const inputs = await sql<{ id: string; content: string; created_at: string; scope: string | null }>`
    select id, content, created_at, scope from memories
    where user_id = ${userId} and not deleted and kind <> 'summary' and created_at > ${since}
    order by created_at desc, id desc
    limit ${SUMMARY_INPUTS}`.execute(db);
  if (inputs.rows.length === 0) return null;
  const chronological = [...inputs.rows].reverse();
  let text = "";
  let summarizer = "extractive";
  if (deps.chat) {
    try {
      let answer = "";
      for await (const part of deps.chat.chat(buildSummaryMessages(chronological))) answer += part;
      text = answer.trim().slice(0, MAX_SUMMARY_CHARS);
      summarizer = deps.chat.id;
    } catch (err) {
      summarizer = `extractive (the LLM failed: ${err instanceof Error ? err.message : String(err)})`;
      deps.log?.({ msg: "summary LLM failed", error: summarizer });
    }
  }
  if (!text) text = extractiveSummary(chronological.map((m) => m.content));
  if (!text) return null;
  const at = nowIso();
  const id = uuidv7();
  const memory: ServerVersion = {
    id,
    content: text,
    kind: "summary",
    tags: ["summary"],
    metadata: {
      generated_by: "consolidation",
      job_id: jobId,
      summarizer,
      memory_ids: chronological.map((m) => m.id),
      covers_from: chronological[0]!.created_at,
      covers_until: chronological.at(-1)!.created_at,
    },
    created_at: at,
    updated_at: at,
    hlc: deps.clock.tick(),
    deleted: false,
    origin_device: VPS_DEVICE,
    // The scope of what it summarises, when that is one scope.
    scope: new Set(chronological.map((m) => m.scope)).size === 1 ? chronological[0]!.scope : null,
    source: "vps",
    occurred_at: null,
    base_hlc: null,
  };
  await db.transaction().execute((tx) => writeServerVersions(tx, userId, [memory]));
  return id;
}
