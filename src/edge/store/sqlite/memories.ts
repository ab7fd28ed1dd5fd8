/** The memories part of the SQLite edge store: local reads and writes, and keyword recall. */
import { type LocalMemory, MemoryPatch, NewMemory, validateMemoryFields } from "../../../core/memory.ts";
import type { RecallHit } from "../../../core/protocol/edge-api.ts";
import { uuidv7 } from "../../../core/uuid.ts";
import type { MemoryStore } from "../types.ts";
import { invalid, iso, type SqliteContext } from "./context.ts";
import { enqueue } from "./queue.ts";
import { type PlanSource, planRecall } from "./recall-plan.ts";
import { MEMORY_COLUMNS, type MemoryRow, toLocalMemory, toMemoryData } from "./rows.ts";

/** A `get()` records the access at most this often per memory, so reads rarely write. */
const TOUCH_INTERVAL_MS = 60_000;
const SNIPPET_TOKENS = 24;

export function sqliteMemories(ctx: SqliteContext): MemoryStore {
  const { q, guard, write } = ctx;

  const planSource: PlanSource = {
    countCapped: (token, cap) =>
      (
        q("SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)").get(
          `"${token}"`,
          cap,
        ) as { n: number }
      ).n,
    countInWindow: (match, minRowid, cap) =>
      (
        q(
          "SELECT count(*) AS n FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? LIMIT ?)",
        ).get(match, minRowid, cap) as { n: number }
      ).n,
    maxRowid: () => (q("SELECT coalesce(max(rid), 0) AS n FROM memories").get() as { n: number }).n,
  };

  return {
    create(input: NewMemory): LocalMemory {
      const parsed = NewMemory.safeParse(input);
      if (!parsed.success) throw invalid(parsed.error.issues);
      const data = parsed.data;
      validateMemoryFields(data, ctx.maxContentBytes);
      return write(() => {
        const hlc = ctx.stamp();
        const now = ctx.clockNow();
        const at = iso(now);
        const memory: LocalMemory = {
          id: uuidv7(now),
          content: data.content,
          kind: data.kind,
          tags: data.tags,
          metadata: data.metadata,
          embedding: null,
          created_at: at,
          updated_at: at,
          hlc,
          deleted: false,
          origin_device: ctx.currentDeviceId,
          source: "local",
          synced_at: null,
          last_accessed_at: null,
        };
        q(
          `INSERT INTO memories (id, content, kind, tags, metadata, embedding, created_at, updated_at, hlc,
                                 deleted, origin_device, source, synced_at, last_accessed_at)
           VALUES (?, ?, ?, ?, ?, NULL, ?, ?, ?, 0, ?, 'local', NULL, NULL)`,
        ).run(
          memory.id,
          memory.content,
          memory.kind,
          JSON.stringify(memory.tags),
          JSON.stringify(memory.metadata),
          at,
          at,
          hlc,
          ctx.currentDeviceId,
        );
        enqueue(ctx, memory.id, "create", hlc, null, toMemoryData(memory));
        return memory;
      });
    },

    get(id: string): LocalMemory | undefined {
      return guard(() => {
        const row = ctx.rowById(id);
        if (!row || row.deleted === 1) return undefined;
        const now = ctx.now();
        const last = row.last_accessed_at ? Date.parse(row.last_accessed_at) : 0;
        if (now - last >= TOUCH_INTERVAL_MS) {
          try {
            q("UPDATE memories SET last_accessed_at = ? WHERE rid = ?").run(iso(now), row.rid);
            row.last_accessed_at = iso(now);
          } catch {
            // Recording the access is best effort: a read never fails because another process
            // holds the write lock.
          }
        }
        return toLocalMemory(row);
      });
    },

    update(id: string, patch: MemoryPatch): LocalMemory {
      const parsed = MemoryPatch.safeParse(patch);
      if (!parsed.success) throw invalid(parsed.error.issues);
      const p = parsed.data;
      validateMemoryFields(p, ctx.maxContentBytes);
      return write(() => {
        const current = toLocalMemory(ctx.liveRow(id));
        const hlc = ctx.stamp();
        const at = iso(ctx.clockNow());
        const next: LocalMemory = {
          ...current,
          content: p.content ?? current.content,
          kind: p.kind ?? current.kind,
          tags: p.tags ?? current.tags,
          metadata: p.metadata ?? current.metadata,
          updated_at: at,
          hlc,
          source: "local",
          synced_at: null,
        };
        q(
          `UPDATE memories SET content = ?, kind = ?, tags = ?, metadata = ?, updated_at = ?, hlc = ?,
                               base_hlc = ?, source = 'local', synced_at = NULL,
                               embedding = CASE WHEN content = ? THEN embedding END
           WHERE id = ?`,
        ).run(
          next.content,
          next.kind,
          JSON.stringify(next.tags),
          JSON.stringify(next.metadata),
          at,
          hlc,
          current.hlc,
          next.content,
          id,
        );
        // A vector describes the content it was made from.
        if (next.content !== current.content) next.embedding = null;
        enqueue(ctx, id, "update", hlc, current.hlc, toMemoryData(next));
        return next;
      });
    },

    delete(id: string): void {
      write(() => {
        const base = ctx.liveRow(id).hlc;
        const hlc = ctx.stamp();
        const at = iso(ctx.clockNow());
        q(
          `UPDATE memories SET content = '', tags = '[]', metadata = '{}', embedding = NULL, deleted = 1,
                               updated_at = ?, hlc = ?, base_hlc = ?, source = 'local', synced_at = NULL
           WHERE id = ?`,
        ).run(at, hlc, base, id);
        // Unsynced writes keep their payload: the VPS still has to receive them in order (synced
        // rows hold none).
        enqueue(ctx, id, "delete", hlc, base, null);
      });
    },

    recent(limit: number): LocalMemory[] {
      return guard(() =>
        (
          q(
            `SELECT ${MEMORY_COLUMNS} FROM memories WHERE deleted = 0 ORDER BY updated_at DESC, rid DESC LIMIT ?`,
          ).all(limit) as MemoryRow[]
        ).map(toLocalMemory),
      );
    },

    recall(query: string, limit: number): RecallHit[] {
      return guard(() => {
        const plan = planRecall(query, planSource);
        if (!plan) return [];
        // FTS5 ranks (ORDER BY rank is answered by the index) and makes snippets for the rows it
        // returns only; the memories are then read by rowid.
        const ranked = q(
          `SELECT rowid AS r, -rank AS score, snippet(memories_fts, 0, '**', '**', '…', ${SNIPPET_TOKENS}) AS s
           FROM memories_fts WHERE memories_fts MATCH ? AND rowid >= ? ORDER BY rank LIMIT ?`,
        ).all(plan.match, plan.minRowid ?? 0, limit) as { r: number; score: number; s: string | null }[];
        const byRid = q(`SELECT ${MEMORY_COLUMNS} FROM memories WHERE rid = ? AND deleted = 0`);
        const hits: RecallHit[] = [];
        for (const h of ranked) {
          const row = byRid.get(h.r) as MemoryRow | null;
          if (!row) continue;
          hits.push({
            memory: toLocalMemory(row),
            score: h.score,
            snippet: h.s || row.content.slice(0, 200),
          });
        }
        return hits;
      });
    },

    countMemories(): number {
      return guard(
        () => (q("SELECT count(*) AS n FROM memories WHERE deleted = 0").get() as { n: number }).n,
      );
    },
  };
}
