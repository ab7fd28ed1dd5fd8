/**
 * The sync protocol on the server side (DESIGN.md "Sync protocol"; FR-011, FR-012, FR-017).
 *
 * Push: one transaction per batch. The device row is locked first, then the batch's writes take a
 * range of the per-user `seq` from `UPDATE users SET seq = seq + n … RETURNING seq`; that row lock is
 * held until commit, so the change feed is commit-ordered and a pull can never skip a change. The
 * device's last mutation_id is recorded in the same transaction, so a replay is answered `duplicate`.
 *
 * Conflict log policy: a losing incoming write (`stale`) is always logged; an overwritten stored
 * version is logged when it was written by another device (a device overwriting its own earlier
 * write is plain editing, not a conflict). Re-sending the very same write (same HLC) logs nothing.
 */
import { type Kysely, sql, type Transaction } from "kysely";
import { DionysusError, describeIssues, isDionysusError } from "../../core/errors.ts";
import { hlcMs } from "../../core/hlc.ts";
import { type Memory, validateContent } from "../../core/memory.ts";
import type { IdentityResponse } from "../../core/protocol/auth.ts";
import {
  type Change,
  type ConflictEntry,
  decodeCursor,
  encodeCursor,
  Mutation,
  type PullQuery,
  type PullResponse,
  type PushResponse,
  type PushResult,
} from "../../core/protocol/sync.ts";
import type { Principal } from "../auth/service.ts";
import { toDevice } from "../auth/service.ts";
import type { MemoryRow, VpsTables } from "../db/schema.ts";
import { CHANGES_CHANNEL } from "../push/channel.ts";

export interface SyncServiceOptions {
  max_content_bytes: number;
  max_clock_skew_ms: number;
  /** Injectable clock (ms), for tests. */
  now?: () => number;
}

export interface PushOutcome {
  response: PushResponse;
  /** The user's seq after this batch when it wrote anything (for webhooks). */
  seq: number | undefined;
}

export const rowToMemory = (r: MemoryRow): Memory => ({
  id: r.id,
  content: r.content,
  kind: r.kind as Memory["kind"],
  tags: r.tags,
  metadata: r.metadata,
  ...(r.embedding ? { embedding: r.embedding } : {}),
  created_at: r.created_at,
  updated_at: r.updated_at,
  hlc: r.hlc,
  deleted: r.deleted,
  origin_device: r.origin_device,
});

const rowToChange = (r: MemoryRow): Change => ({ ...rowToMemory(r), seq: r.seq });

function positiveInt(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

export type SyncService = ReturnType<typeof createSyncService>;

export function createSyncService(db: Kysely<VpsTables>, options: SyncServiceOptions) {
  const now = options.now ?? Date.now;
  let epoch: string | undefined;

  async function getEpoch(): Promise<string> {
    if (epoch) return epoch;
    const r = await db
      .selectFrom("server_meta")
      .select("epoch")
      .where("id", "=", 1)
      .executeTakeFirstOrThrow();
    epoch = r.epoch;
    return epoch;
  }

  async function userSeq(tx: Kysely<VpsTables> | Transaction<VpsTables>, userId: string): Promise<number> {
    const u = await tx.selectFrom("users").select("seq").where("id", "=", userId).executeTakeFirstOrThrow();
    return u.seq;
  }

  return {
    getEpoch,

    /** The user's current feed position as a cursor. */
    async currentCursor(userId: string): Promise<{ seq: number; cursor: string }> {
      const seq = await userSeq(db, userId);
      return { seq, cursor: encodeCursor(await getEpoch(), seq) };
    },

    /**
     * Applies a batch of raw (not yet validated) mutations for the caller's device. The batch is
     * resolved in memory against the locked current rows, then written with a few set-based
     * statements: one seq range for the whole batch, one upsert, one conflict-log insert.
     */
    async push(p: Principal, mutations: readonly unknown[]): Promise<PushOutcome> {
      const serverNow = now();
      const outcome = await db.transaction().execute(async (tx) => {
        const dev = await tx
          .selectFrom("devices")
          .select(["last_mutation_id", "revoked_at"])
          .where("user_id", "=", p.user_id)
          .where("device_id", "=", p.device_id)
          .forUpdate()
          .executeTakeFirst();
        if (!dev || dev.revoked_at)
          throw new DionysusError("unauthorized", "this device is not registered or revoked");
        let last = dev.last_mutation_id;
        const results: PushResult[] = [];
        const toApply: Array<{ result: PushResult; m: Mutation }> = [];

        for (let index = 0; index < mutations.length; index++) {
          const raw = mutations[index];
          const rawId = positiveInt((raw as { mutation_id?: unknown } | null)?.mutation_id);
          const parsed = Mutation.safeParse(raw);
          let reject: { code: string; reason: string } | undefined;
          if (!parsed.success)
            reject = { code: "invalid_input", reason: describeIssues(parsed.error.issues) };
          else if (parsed.data.op !== "delete") {
            try {
              validateContent(parsed.data.data.content, options.max_content_bytes);
            } catch (err) {
              if (!isDionysusError(err)) throw err;
              reject = { code: err.code, reason: `data.content: ${err.message}` };
            }
          }
          if (reject || !parsed.success) {
            results.push({
              index,
              mutation_id: rawId ?? null,
              status: "rejected",
              ...reject!,
              retryable: false,
            });
            if (rawId !== undefined && rawId > last) last = rawId;
            continue;
          }
          const m = parsed.data;
          if (m.mutation_id <= last) {
            results.push({ index, mutation_id: m.mutation_id, status: "duplicate" });
            continue;
          }
          const aheadMs = hlcMs(m.hlc) - serverNow;
          if (aheadMs > options.max_clock_skew_ms) {
            results.push({
              index,
              mutation_id: m.mutation_id,
              status: "rejected",
              code: "clock_skew",
              reason: `hlc is ${aheadMs} ms ahead of the server clock (limit ${options.max_clock_skew_ms} ms); re-stamp and resend`,
              retryable: true,
            });
            break;
          }
          const result: PushResult = { index, mutation_id: m.mutation_id, status: "applied" };
          results.push(result);
          toApply.push({ result, m });
          last = m.mutation_id;
        }

        let seq: number | undefined;
        if (toApply.length > 0) {
          const ids = [...new Set(toApply.map((a) => a.m.id))];
          const rows = await tx
            .selectFrom("memories")
            .selectAll()
            .where("user_id", "=", p.user_id)
            .where("id", "in", ids)
            .forUpdate()
            .execute();
          const state = new Map<string, Memory>(rows.map((r) => [r.id, rowToMemory(r)]));
          const written = new Map<string, Memory>();
          const conflicts: Array<{
            memory_id: string;
            winner_hlc: string;
            loser_hlc: string;
            loser: Memory;
          }> = [];
          for (const { result, m } of toApply) {
            const cur = state.get(m.id);
            const incoming: Memory =
              m.op === "delete"
                ? {
                    id: m.id,
                    content: "",
                    kind: cur?.kind ?? "episodic",
                    tags: [],
                    metadata: {},
                    created_at: cur?.created_at ?? new Date(hlcMs(m.hlc)).toISOString(),
                    updated_at: new Date(hlcMs(m.hlc)).toISOString(),
                    hlc: m.hlc,
                    deleted: true,
                    origin_device: p.device_id,
                  }
                : { id: m.id, ...m.data, hlc: m.hlc, deleted: false, origin_device: p.device_id };
            if (cur && !(m.hlc > cur.hlc)) {
              if (m.hlc !== cur.hlc)
                conflicts.push({ memory_id: m.id, winner_hlc: cur.hlc, loser_hlc: m.hlc, loser: incoming });
              result.status = "stale";
              continue;
            }
            if (cur && cur.origin_device !== p.device_id)
              conflicts.push({ memory_id: m.id, winner_hlc: m.hlc, loser_hlc: cur.hlc, loser: cur });
            state.set(m.id, incoming);
            // Re-inserting keeps the map in order of each memory's last write: its place in the feed.
            written.delete(m.id);
            written.set(m.id, incoming);
          }

          if (written.size > 0) {
            // One seq range for the batch, under the user's row lock (held to commit: commit order),
            // and the poke sent in the same statement, delivered at commit.
            const next = await tx
              .updateTable("users")
              .set((eb) => ({ seq: eb("seq", "+", written.size) }))
              .where("id", "=", p.user_id)
              .returning([
                "seq",
                sql<string>`pg_notify(${CHANGES_CHANNEL}, json_build_object('type', 'changes', 'user_id', id, 'seq', seq)::text)`.as(
                  "notified",
                ),
              ])
              .executeTakeFirstOrThrow();
            seq = next.seq;
            let s = next.seq - written.size;
            const values = [...written.values()].map((mem) => ({
              user_id: p.user_id,
              id: mem.id,
              content: mem.content,
              kind: mem.kind,
              tags: JSON.stringify(mem.tags),
              metadata: JSON.stringify(mem.metadata),
              embedding: null,
              created_at: mem.created_at,
              updated_at: mem.updated_at,
              hlc: mem.hlc,
              deleted: mem.deleted,
              origin_device: mem.origin_device,
              seq: ++s,
              server_updated_at: new Date(serverNow),
            }));
            for (let i = 0; i < values.length; i += 1000)
              await tx
                .insertInto("memories")
                .values(values.slice(i, i + 1000))
                .onConflict((oc) =>
                  oc.columns(["user_id", "id"]).doUpdateSet((eb) => ({
                    content: eb.ref("excluded.content"),
                    kind: eb.ref("excluded.kind"),
                    tags: eb.ref("excluded.tags"),
                    metadata: eb.ref("excluded.metadata"),
                    embedding: eb.ref("excluded.embedding"),
                    created_at: eb.ref("excluded.created_at"),
                    updated_at: eb.ref("excluded.updated_at"),
                    hlc: eb.ref("excluded.hlc"),
                    deleted: eb.ref("excluded.deleted"),
                    origin_device: eb.ref("excluded.origin_device"),
                    seq: eb.ref("excluded.seq"),
                    server_updated_at: eb.ref("excluded.server_updated_at"),
                  })),
                )
                .execute();
          }
          for (let i = 0; i < conflicts.length; i += 1000)
            await tx
              .insertInto("conflicts")
              .values(
                conflicts.slice(i, i + 1000).map((c) => ({
                  user_id: p.user_id,
                  memory_id: c.memory_id,
                  winner_hlc: c.winner_hlc,
                  loser_hlc: c.loser_hlc,
                  loser: JSON.stringify(c.loser),
                })),
              )
              .execute();
        }

        await tx
          .updateTable("devices")
          .set({ last_mutation_id: last, last_seen: new Date(serverNow) })
          .where("user_id", "=", p.user_id)
          .where("device_id", "=", p.device_id)
          .execute();
        return { results, last, seq };
      });
      return {
        response: { results: outcome.results, last_mutation_id: outcome.last, server_time: Date.now() },
        seq: outcome.seq,
      };
    },

    /** One page of the caller's change feed after `since`. */
    async pull(userId: string, q: PullQuery): Promise<PullResponse> {
      const ep = await getEpoch();
      let since = 0;
      if (q.since !== undefined && q.since !== "") {
        const c = decodeCursor(q.since);
        if (!c) throw new DionysusError("invalid_input", "since: not a cursor this server issued");
        if (c.epoch !== ep)
          return {
            status: "refetch",
            reason:
              "the cursor is from another server epoch (the server was reset or restored); pull from scratch",
            server_time: Date.now(),
          };
        since = c.seq;
      }
      const current = await userSeq(db, userId);
      if (since > current)
        return {
          status: "refetch",
          reason:
            "the cursor is ahead of this server's change feed (the server was restored); pull from scratch",
          server_time: Date.now(),
        };
      const rows = await db
        .selectFrom("memories")
        .selectAll()
        .where("user_id", "=", userId)
        .where("seq", ">", since)
        .orderBy("seq")
        .limit(q.limit + 1)
        .execute();
      const page = rows.slice(0, q.limit);
      return {
        status: "ok",
        changes: page.map(rowToChange),
        cursor: encodeCursor(ep, page.at(-1)?.seq ?? since),
        up_to_date: rows.length <= q.limit,
        server_time: Date.now(),
      };
    },

    /** The identity baseline: profile, identity memories and the feed position they are current at. */
    async identity(p: Principal): Promise<IdentityResponse> {
      const ep = await getEpoch();
      return db
        .transaction()
        .setIsolationLevel("repeatable read")
        .execute(async (tx) => {
          const user = await tx
            .selectFrom("users")
            .select(["id", "name", "seq"])
            .where("id", "=", p.user_id)
            .executeTakeFirstOrThrow();
          const device = await tx
            .selectFrom("devices")
            .selectAll()
            .where("user_id", "=", p.user_id)
            .where("device_id", "=", p.device_id)
            .executeTakeFirstOrThrow();
          const rows = await tx
            .selectFrom("memories")
            .selectAll()
            .where("user_id", "=", p.user_id)
            .where("kind", "=", "identity")
            .where("deleted", "=", false)
            .orderBy("created_at")
            .orderBy("id")
            .execute();
          return {
            user: { id: user.id, name: user.name },
            device: toDevice(device),
            memories: rows.map(rowToMemory),
            cursor: encodeCursor(ep, user.seq),
          };
        });
    },

    /** The conflict log of the user, newest first, optionally for one memory. */
    async conflicts(
      userId: string,
      opts: { memory_id?: string; limit?: number } = {},
    ): Promise<ConflictEntry[]> {
      let q = db
        .selectFrom("conflicts")
        .selectAll()
        .where("user_id", "=", userId)
        .orderBy("id", "desc")
        .limit(opts.limit ?? 100);
      if (opts.memory_id) q = q.where("memory_id", "=", opts.memory_id);
      const rows = await q.execute();
      return rows.map((r) => ({
        memory_id: r.memory_id,
        winner_hlc: r.winner_hlc,
        loser_hlc: r.loser_hlc,
        loser: (r.loser as Memory | null) ?? null,
        resolved_at: new Date(r.resolved_at).toISOString(),
      }));
    },
  };
}
