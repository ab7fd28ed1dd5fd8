/**
 * The sync protocol on the server side (docs/architecture.md, "The sync protocol").
 *
 * Push: one transaction per batch. The device row is locked first, then the batch's writes take a
 * range of the per-user `seq` from `UPDATE users SET seq = seq + n … RETURNING seq`; that row lock is
 * held until commit, so the change feed is commit-ordered and a pull can never skip a change. The
 * device's last mutation_id is recorded in the same transaction, so a replay is answered `duplicate`.
 *
 * Conflict log policy: a losing incoming write (`stale`) is always logged; an overwritten stored
 * version is logged when the two writes were concurrent: the incoming write's `base_hlc` (the
 * version its device had seen) is not the stored stamp. Editing on top of the current version,
 * from any device, is plain editing. Without a `base_hlc` (older clients), an overwrite of
 * another device's write counts as a conflict. Re-sending the very same write logs nothing.
 */
import { createHash } from "node:crypto";
import { type Kysely, sql, type Transaction } from "kysely";
import { resolve } from "../../core/conflict.ts";
import { DionysusError, describeIssues, isDionysusError } from "../../core/errors.ts";
import { hlcMs, parseHlc } from "../../core/hlc.ts";
import { type Memory, validateMemoryFields } from "../../core/memory.ts";
import type { IdentityResponse } from "../../core/protocol/auth.ts";
import {
  type ConflictEntry,
  decodeCursor,
  encodeCursor,
  type MemoryData,
  Mutation,
  type PullQuery,
  type PullResponse,
  type PushResponse,
  type PushResult,
} from "../../core/protocol/sync.ts";
import type { Principal } from "../auth/service.ts";
import { toDevice } from "../auth/service.ts";
import {
  currentVectors,
  jsonToMemory,
  MEMORY_COLUMNS,
  MEMORY_FIELDS,
  type MemoryJson,
  rowToChange,
  rowToMemory,
} from "../db/memories.ts";
import type { MemoryRow, VpsTables } from "../db/schema.ts";
import { feedVector } from "../db/vector-bytes.ts";
import { memoryWriteCtes } from "./server-write.ts";

export interface SyncServiceOptions {
  max_content_bytes: number;
  max_clock_skew_ms: number;
  /** Injectable clock (ms), for tests. */
  now?: () => number;
  /** The embedder whose vectors the change feed carries as `embedding` (none when absent). */
  embeddingModel?: string;
}

export interface PushOutcome {
  response: PushResponse;
  /** The user's seq after this batch when it wrote anything (for webhooks). */
  seq: number | undefined;
}

const toConflictEntry = (r: {
  memory_id: string;
  winner_hlc: string;
  loser_hlc: string;
  loser: unknown;
  resolved_at: Date | string;
}): ConflictEntry => ({
  memory_id: r.memory_id,
  winner_hlc: r.winner_hlc,
  loser_hlc: r.loser_hlc,
  loser: (r.loser as Memory | null) ?? null,
  resolved_at: new Date(r.resolved_at).toISOString(),
});

/** How many recent mutation digests the VPS keeps per device. A resend is always of the last few
 * batches; a number older than this window that comes again is taken as a different history. */
export const MUTATION_HISTORY = 10_000;

/**
 * The digest of a mutation's content (everything but its number): a resend of the same write
 * has the same digest, a different write under a reused number (a restored or copied data dir)
 * does not.
 */
export function mutationDigest(m: Mutation): string {
  const data = m.op === "delete" ? null : protocol1Compatible(m.data);
  return createHash("sha256")
    .update(JSON.stringify([m.op, m.id, m.hlc, m.base_hlc ?? null, data]))
    .digest("base64url");
}

/** The fields protocol 2 added are left out of a digest while they hold their defaults, so that a
 * write pushed before an upgrade and resent after it keeps its digest (it is a `duplicate`, not a
 * different history). */
function protocol1Compatible(d: MemoryData): Partial<MemoryData> {
  const { scope, source, occurred_at, ...rest } = d;
  return {
    ...rest,
    ...(scope === null ? {} : { scope }),
    ...(source === "unknown" ? {} : { source }),
    ...(occurred_at === null ? {} : { occurred_at }),
  };
}

function positiveInt(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/** A pushed mutation after validation: the parsed mutation, or why it is refused. */
interface Checked {
  rawId: number | undefined;
  m?: Mutation;
  reject?: { code: string; reason: string };
  /** A well-formed mutation the database refused: its digest is recorded as refused, so that a
   * resend is answered `rejected` again instead of being taken for another history. */
  refusedByDatabase?: Mutation;
}

/** Digest prefix of a mutation the database refused (see `Checked.refusedByDatabase`). */
const REFUSED = "refused:";

/**
 * Validates one raw mutation: the protocol shape, then what its memory may hold (content, tags,
 * metadata; src/core/validate.ts, the same checks the edge makes on every write).
 */
function checkMutation(raw: unknown, maxContentBytes: number): Checked {
  const rawId = positiveInt((raw as { mutation_id?: unknown } | null)?.mutation_id);
  const parsed = Mutation.safeParse(raw);
  if (!parsed.success)
    return { rawId, reject: { code: "invalid_input", reason: describeIssues(parsed.error.issues) } };
  if (parsed.data.op !== "delete") {
    try {
      validateMemoryFields(parsed.data.data, maxContentBytes);
    } catch (err) {
      if (!isDionysusError(err)) throw err;
      // "data.content: content is …", "data.tags: tags[2] must not …", "data.metadata: metadata.a …"
      const field = /^(content|tags|metadata)\b/.exec(err.message)?.[1];
      return { rawId, reject: { code: err.code, reason: `data${field ? `.${field}` : ""}: ${err.message}` } };
    }
  }
  return { rawId, m: parsed.data };
}

interface BatchOutcome {
  results: PushResult[];
  last: number;
  seq: number | undefined;
}

/**
 * Whether a database error is about the data written (SQLSTATE class 22 "data exception", e.g. a
 * character the encoding cannot hold, or 54 "program limit exceeded", e.g. a string too long for
 * tsvector or nesting too deep): the same write fails again however often it is retried.
 */
export function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

/**
 * Applies a validated batch with `apply` (one transaction). When the database refuses it for the
 * data of some write, the batch is bisected, in order, until the refused mutations stand alone:
 * each is then rejected for good (`retryable: false`, with the database's reason) and its digest
 * recorded as refused (a resend is answered `rejected` again), and every other mutation applies. Results keep the request's indices;
 * a part that stopped early (clock skew) ends the batch there, as a single transaction would.
 */
export async function applyIsolatingDataErrors(
  checked: Checked[],
  apply: (part: Checked[]) => Promise<BatchOutcome>,
): Promise<BatchOutcome> {
  const out: BatchOutcome = { results: [], last: 0, seq: undefined };
  const take = (o: BatchOutcome, from: number) => {
    for (const r of o.results) out.results.push({ ...r, index: r.index + from });
    out.last = Math.max(out.last, o.last);
    out.seq = o.seq ?? out.seq;
  };
  // Returns false when the part stopped early: nothing after it may apply.
  const run = async (from: number, to: number): Promise<boolean> => {
    const part = checked.slice(from, to);
    let o: BatchOutcome;
    try {
      o = await apply(part);
    } catch (err) {
      if (!isDataError(err)) throw err;
      if (part.length > 1) {
        const mid = from + Math.ceil((to - from) / 2);
        return (await run(from, mid)) && run(mid, to);
      }
      o = await apply([refused(part[0]!, err)]);
    }
    take(o, from);
    return o.results.length === part.length;
  };
  await run(0, checked.length);
  return out;
}

/** A retryable refusal after which the VPS stops the batch (the device fixes the cause and resends). */
function stop(index: number, m: Mutation, code: string, reason: string): PushResult {
  return { index, mutation_id: m.mutation_id, status: "rejected", code, reason, retryable: true };
}

function refused(c: Checked, err: unknown): Checked {
  const e = err as { code?: string; message?: string };
  return {
    rawId: c.rawId ?? c.m?.mutation_id,
    ...(c.m ? { refusedByDatabase: c.m } : {}),
    reject: {
      code: "invalid_input",
      reason: `the database cannot store this write (SQLSTATE ${e.code}): ${e.message ?? String(err)}`,
    },
  };
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
     * Applies a batch of raw (not yet validated) mutations for the caller's device. Validation
     * happens before the transaction; inside it, one statement locks the device row and the
     * memories the batch touches, the batch is resolved in memory (duplicates, clock skew,
     * last-write-wins), and one statement writes everything: the seq range for the batch (with the
     * poke), the upsert of the winning versions, the conflict log and the device's last mutation.
     * Four round trips per push whatever its size (five for a push that waited on a concurrent push
     * of the same device); that is what keeps pushes cheap.
     */
    async push(p: Principal, mutations: readonly unknown[]): Promise<PushOutcome> {
      const serverNow = now();
      const checked = mutations.map((raw) => checkMutation(raw, options.max_content_bytes));

      async function writeBatch(tx: Transaction<VpsTables>, checked: Checked[]): Promise<BatchOutcome> {
        // Only this part's memories and digests: a batch split after a data error locks no more.
        const ids = [...new Set(checked.flatMap((c) => (c.m ? [c.m.id] : [])))];
        const numbers = checked.flatMap((c) => (c.m ? [c.m.mutation_id] : []));
        // Locks the device row and the memories, and reads the device's digests. Under READ
        // COMMITTED the statement reads from a snapshot taken before it waited for a lock: when the
        // device row changed meanwhile (a copy of this very push committed first), the digests and
        // memories read are from before that commit, and the copy would be taken for another
        // history. The locked row version (`dev.v`) then differs from the snapshot's (`snap_v`):
        // the statement is run again, now holding the lock, which costs a round trip only then.
        const readLocked = () =>
          sql<{
            dev: { v: string; last_mutation_id: number; revoked_at: string | null } | null;
            snap_v: string | null;
            mems: MemoryJson[];
            seen: Array<{ mutation_id: number | string; digest: string }>;
            high: string | null;
          }>`
          with d as (
            select xmin::text as v, last_mutation_id, revoked_at from devices
            where user_id = ${p.user_id} and device_id = ${p.device_id} for update
          ), m as (
            select ${MEMORY_COLUMNS} from memories
            where user_id = ${p.user_id} and id = any(${ids}::text[]) for update
          ), h as (
            select mutation_id, digest from device_mutations
            where user_id = ${p.user_id} and device_id = ${p.device_id}
              and mutation_id = any(${numbers}::bigint[])
          )
          select (select row_to_json(d) from d) as dev,
            (select xmin::text from devices where user_id = ${p.user_id} and device_id = ${p.device_id}) as snap_v,
            coalesce((select json_agg(m) from m), '[]'::json) as mems,
            coalesce((select json_agg(h) from h), '[]'::json) as seen,
            (select max(hlc_high) from devices where user_id = ${p.user_id}) as high`.execute(tx);
        let locked = await readLocked();
        if (locked.rows[0]?.dev && locked.rows[0].dev.v !== locked.rows[0].snap_v)
          locked = await readLocked();
        const row = locked.rows[0];
        const dev = row?.dev;
        if (!dev || dev.revoked_at)
          throw new DionysusError("unauthorized", "this device is not registered or revoked");
        let last = Number(dev.last_mutation_id);
        const seen = new Map((row.seen ?? []).map((h) => [Number(h.mutation_id), h.digest]));
        // The VPS's hybrid clock: never behind the newest stamp it has accepted for this user, so a
        // server clock that steps back (a restart on a slow clock, a restored snapshot) does not
        // refuse the devices that were in step with it before.
        const clockMs = Math.max(serverNow, row.high ? hlcMs(row.high) : 0);
        let high: string | null = null;
        const recorded: Array<{ mutation_id: number; digest: string }> = [];
        const state = new Map<string, Memory>((row.mems ?? []).map((r) => [r.id, jsonToMemory(r)]));
        const written = new Map<string, Memory & { base_hlc: string | null }>();
        const conflicts: Array<{ memory_id: string; winner_hlc: string; loser_hlc: string; loser: Memory }> =
          [];
        const results: PushResult[] = [];

        for (let index = 0; index < checked.length; index++) {
          const { rawId, m, reject } = checked[index]!;
          if (!m) {
            // Refused for good. A malformed write must not move the device's last mutation (a huge
            // made-up number would turn every later write into a "duplicate"); one the database
            // refused is remembered as refused, so a resend gets the same answer.
            results.push({
              index,
              mutation_id: rawId ?? null,
              status: "rejected",
              ...reject!,
              retryable: false,
            });
            const refused = checked[index]!.refusedByDatabase;
            if (refused)
              recorded.push({ mutation_id: refused.mutation_id, digest: REFUSED + mutationDigest(refused) });
            continue;
          }
          const digest = mutationDigest(m);
          if (m.mutation_id <= last) {
            if (seen.get(m.mutation_id) === digest) {
              results.push({ index, mutation_id: m.mutation_id, status: "duplicate" });
              continue;
            }
            if (seen.get(m.mutation_id) === REFUSED + digest) {
              results.push({
                index,
                mutation_id: m.mutation_id,
                status: "rejected",
                code: "invalid_input",
                reason: "the database refused this write when it was first sent",
                retryable: false,
              });
              continue;
            }
            results.push(
              stop(
                index,
                m,
                "device_diverged",
                `mutation ${m.mutation_id} of this device is already on the VPS with other content (the data dir was restored, rolled back or copied); take a new device identity and send it again`,
              ),
            );
            break;
          }
          if (parseHlc(m.hlc)?.node !== p.device_id) {
            results.push(
              stop(
                index,
                m,
                "hlc_node",
                `the stamp's node is not this device (${p.device_id}); re-stamp and resend`,
              ),
            );
            break;
          }
          const aheadMs = hlcMs(m.hlc) - clockMs;
          if (aheadMs > options.max_clock_skew_ms) {
            results.push(
              stop(
                index,
                m,
                "clock_skew",
                `hlc is ${aheadMs} ms ahead of the server clock (limit ${options.max_clock_skew_ms} ms); re-stamp and resend`,
              ),
            );
            break;
          }
          last = m.mutation_id;
          recorded.push({ mutation_id: m.mutation_id, digest });
          if (high === null || m.hlc > high) high = m.hlc;
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
                  scope: cur?.scope ?? null,
                  source: cur?.source ?? "unknown",
                  occurred_at: null,
                }
              : { id: m.id, ...m.data, hlc: m.hlc, deleted: false, origin_device: p.device_id };
          const lww = resolve(cur, incoming, { incomingBase: m.base_hlc, withoutBase: "other-device" });
          if (cur && lww.winner !== "incoming") {
            if (lww.conflict)
              conflicts.push({ memory_id: m.id, winner_hlc: cur.hlc, loser_hlc: m.hlc, loser: incoming });
            results.push({ index, mutation_id: m.mutation_id, status: "stale", current: cur });
            continue;
          }
          if (cur && lww.conflict)
            conflicts.push({ memory_id: m.id, winner_hlc: m.hlc, loser_hlc: cur.hlc, loser: cur });
          state.set(m.id, incoming);
          // Re-inserting keeps the map in order of each memory's last write: its place in the feed.
          written.delete(m.id);
          written.set(m.id, { ...incoming, base_hlc: m.base_hlc ?? null });
          results.push({ index, mutation_id: m.mutation_id, status: "applied" });
        }

        const n = written.size;
        const rowsJson = JSON.stringify([...written.values()].map((mem, i) => ({ ...mem, ord: i + 1 })));
        const conflictsJson = JSON.stringify(conflicts);
        // One statement for every write. The seq range is taken under the user's row lock, held to
        // commit, so the feed is commit-ordered; the poke rides on it and is delivered at commit.
        const wrote = await sql<{ seq: number | string | null }>`
          with ${memoryWriteCtes(p.user_id, n, rowsJson)}, c as (
            insert into conflicts (user_id, memory_id, winner_hlc, loser_hlc, loser)
            select ${p.user_id}, x.memory_id, x.winner_hlc, x.loser_hlc, x.loser
            from jsonb_to_recordset(${conflictsJson}::jsonb) as x(memory_id text, winner_hlc text, loser_hlc text, loser jsonb)
            returning 1
          ), d as (
            update devices set last_mutation_id = ${last}, last_seen = now(),
              hlc_high = greatest(hlc_high, ${high}::text)
            where user_id = ${p.user_id} and device_id = ${p.device_id}
            returning 1
          ), h as (
            insert into device_mutations (user_id, device_id, mutation_id, digest)
            select ${p.user_id}, ${p.device_id}, x.mutation_id, x.digest
            from jsonb_to_recordset(${JSON.stringify(recorded)}::jsonb) as x(mutation_id bigint, digest text)
            on conflict (user_id, device_id, mutation_id) do update set digest = excluded.digest
            returning 1
          ), hp as (
            delete from device_mutations
            where user_id = ${p.user_id} and device_id = ${p.device_id}
              and mutation_id <= ${last - MUTATION_HISTORY} and ${recorded.length}::int > 0
            returning 1
          )
          select (select seq from u) as seq, (select count(*) from ins) as n_ins, (select count(*) from c) as n_c,
            (select count(*) from j) as n_j, (select count(*) from d) as n_d, (select count(*) from h) as n_h,
            (select count(*) from hp) as n_hp`.execute(tx);
        const seqRaw = wrote.rows[0]?.seq;
        return { results, last, seq: n > 0 && seqRaw != null ? Number(seqRaw) : undefined };
      }
      const outcome = await applyIsolatingDataErrors(checked, (part) =>
        db.transaction().execute((tx) => writeBatch(tx, part)),
      );
      return {
        response: { results: outcome.results, last_mutation_id: outcome.last, server_time: now() },
        seq: outcome.seq,
      };
    },

    /** One page of the caller's change feed after `since`. */
    async pull(userId: string, q: PullQuery): Promise<PullResponse> {
      const ep = await getEpoch();
      let since = 0;
      let sinceConflict = 0;
      if (q.since !== undefined && q.since !== "") {
        const c = decodeCursor(q.since);
        if (!c) throw new DionysusError("invalid_input", "since: not a cursor this server issued");
        if (c.epoch !== ep)
          return {
            status: "refetch",
            reason:
              "the cursor is from another server epoch (the server was reset or restored); pull from scratch",
            server_time: now(),
          };
        since = c.seq;
        sinceConflict = c.conflictId;
      }
      const current = await userSeq(db, userId);
      if (since > current)
        return {
          status: "refetch",
          reason:
            "the cursor is ahead of this server's change feed (the server was restored); pull from scratch",
          server_time: now(),
        };
      const found = await sql<MemoryRow & { hash: string }>`
        select ${MEMORY_COLUMNS}, md5(content) as hash from memories
        where user_id = ${userId} and seq > ${since}
        order by seq
        limit ${q.limit + 1}`.execute(db);
      // The current vector (of the current content, by the current embedder) rides along. Looked up
      // by primary key for the page, never joined row by row: a join's plan goes quadratic when
      // the table's statistics are stale (right after a backlog was embedded).
      const vectors = await currentVectors(
        db,
        userId,
        options.embeddingModel,
        found.rows.filter((r) => !r.deleted),
      );
      const rows = found.rows.map(({ hash: _h, ...r }) => ({
        ...r,
        seq: Number(r.seq),
        embedding: vectors.has(r.id) ? feedVector(vectors.get(r.id)!) : null,
      }));
      const page = rows.slice(0, q.limit);
      // The conflict log travels beside the feed, with its own position in the cursor.
      const logged = await db
        .selectFrom("conflicts")
        .selectAll()
        .where("user_id", "=", userId)
        .where("id", ">", sinceConflict)
        .orderBy("id")
        .limit(q.limit + 1)
        .execute();
      const conflictPage = logged.slice(0, q.limit);
      const lastConflict = conflictPage.length ? Number(conflictPage.at(-1)!.id) : sinceConflict;
      return {
        status: "ok",
        changes: page.map(rowToChange),
        conflicts: conflictPage.map(toConflictEntry),
        cursor: encodeCursor(ep, page.at(-1)?.seq ?? since, lastConflict),
        up_to_date: rows.length <= q.limit && logged.length <= q.limit,
        server_time: now(),
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
            .select(MEMORY_FIELDS)
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
      return rows.map(toConflictEntry);
    },
  };
}
