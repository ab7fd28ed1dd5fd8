/**
 * The job queue of the VPS, a Postgres table (`jobs`) that any number of workers (one per
 * `vps serve` instance) share: they claim due jobs with `FOR UPDATE SKIP LOCKED`, so two workers
 * never take the same job and none waits for another.
 *
 * Kinds: `embed` and `extract` (one memory each; queued by every write, at most one queued per
 * memory and kind) and `consolidate` (one per user in flight). A claimed job is `running` with a
 * heartbeat; a running job whose heartbeat is older than {@link STALE_AFTER_S} (its worker died)
 * is claimed again. A failure is retried with backoff up to {@link MAX_ATTEMPTS} times, then the
 * job is `failed` with its error. Finished memory jobs are deleted; consolidations are kept, so
 * that `GET /v1/jobs/:id` can answer them.
 */
import { type Kysely, sql } from "kysely";
import type { Job } from "../../core/protocol/heavy.ts";
import { uuidv7 } from "../../core/uuid.ts";
import { notifyChannel } from "../db/channel.ts";
import type { JobRowKind, JobRowStatus, VpsTables } from "../db/schema.ts";

/** Tries per job before it is `failed`. */
export const MAX_ATTEMPTS = 5;
/** A running job without a heartbeat for this long is taken to be abandoned. */
export const STALE_AFTER_S = 300;

/** Delay before retry `attempt` (1-based): 5 s, 20 s, 80 s, 320 s. */
export const retryDelayS = (attempt: number): number => 5 * 4 ** Math.max(0, attempt - 1);

export interface JobRow {
  user_id: string;
  id: string;
  kind: JobRowKind;
  memory_id: string | null;
  status: JobRowStatus;
  attempts: number;
  created_at: Date;
  finished_at: Date | null;
  result: Record<string, unknown> | null;
  error: string | null;
}

const iso = (d: Date | string | null): string | null => (d === null ? null : new Date(d).toISOString());

/** A consolidation job as the API answers it. */
export function toJob(r: JobRow): Job {
  return {
    id: r.id,
    kind: "consolidate",
    status: r.status,
    created_at: iso(r.created_at)!,
    finished_at: iso(r.finished_at),
    result: r.result,
    error: r.error,
  };
}

const COLUMNS = sql.raw(
  "user_id, id, kind, memory_id, status, attempts, created_at, finished_at, result, error",
);

export type JobQueue = ReturnType<typeof createJobQueue>;

export function createJobQueue(db: Kysely<VpsTables>) {
  return {
    /**
     * Starts a consolidation of the user, unless one is queued or running: then that one is
     * answered with `started: false`. A unique index makes this safe under concurrent requests.
     */
    async startConsolidation(userId: string): Promise<{ job: Job; started: boolean }> {
      for (let attempt = 0; attempt < 5; attempt++) {
        const inserted = await sql<JobRow>`
          insert into jobs (user_id, id, kind) values (${userId}, ${uuidv7()}, 'consolidate')
          on conflict (user_id) where kind = 'consolidate' and status in ('queued', 'running') do nothing
          returning ${COLUMNS}`.execute(db);
        if (inserted.rows[0]) {
          // The worker may run in another process (`vps worker`): wake it through the channel.
          await notifyChannel(db, { type: "wake" });
          return { job: toJob(inserted.rows[0]), started: true };
        }
        const current = await sql<JobRow>`
          select ${COLUMNS} from jobs
          where user_id = ${userId} and kind = 'consolidate' and status in ('queued', 'running')`.execute(db);
        // Empty only when the one in flight finished in between: try again.
        if (current.rows[0]) return { job: toJob(current.rows[0]), started: false };
      }
      throw new Error("could not start or find a consolidation job");
    },

    /** One of the user's consolidation jobs; undefined for another user's or an unknown id. */
    async get(userId: string, id: string): Promise<Job | undefined> {
      const r = await sql<JobRow>`
        select ${COLUMNS} from jobs
        where user_id = ${userId} and id = ${id} and kind = 'consolidate'`.execute(db);
      return r.rows[0] ? toJob(r.rows[0]) : undefined;
    },

    /**
     * Claims up to `limit` due jobs of `kinds` (queued and due, or running with a stale
     * heartbeat), oldest first, and marks them running. Rows another worker is claiming at the
     * same moment are skipped, not waited for.
     */
    async claim(kinds: readonly JobRowKind[], limit: number): Promise<JobRow[]> {
      const r = await sql<JobRow>`
        update jobs j set status = 'running', attempts = j.attempts + 1, started_at = now(),
          heartbeat_at = now(), error = null
        from (
          select user_id, id from jobs
          where kind = any(${kinds as string[]}::text[])
            and ((status = 'queued' and run_after <= now())
              or (status = 'running' and heartbeat_at < now() - make_interval(secs => ${STALE_AFTER_S})))
          order by run_after, created_at
          limit ${limit}
          for update skip locked
        ) c
        where j.user_id = c.user_id and j.id = c.id
        returning ${sql.raw("j.user_id, j.id, j.kind, j.memory_id, j.status, j.attempts, j.created_at, j.finished_at, j.result, j.error")}`.execute(
        db,
      );
      return r.rows.map((row) => ({ ...row, attempts: Number(row.attempts) }));
    },

    /** Keeps a long job (a consolidation) from looking abandoned. */
    async heartbeat(job: Pick<JobRow, "user_id" | "id">): Promise<void> {
      await sql`update jobs set heartbeat_at = now() where user_id = ${job.user_id} and id = ${job.id}
        and status = 'running'`.execute(db);
    },

    /** A job succeeded: memory jobs are deleted, a consolidation becomes `done` with its result. */
    /** Memory jobs done in one batch: deleted with one statement (the embed worker's hot path). */
    async finishMany(jobs: readonly JobRow[]): Promise<void> {
      const memoryJobs = jobs.filter((j) => j.kind !== "consolidate");
      if (memoryJobs.length > 0)
        await sql`
          delete from jobs as j using jsonb_to_recordset(${JSON.stringify(memoryJobs.map((m) => ({ user_id: m.user_id, id: m.id })))}::jsonb)
            as x(user_id text, id text)
          where j.user_id = x.user_id and j.id = x.id`.execute(db);
      for (const j of jobs) if (j.kind === "consolidate") await this.finish(j);
    },

    async finish(job: JobRow, result?: Record<string, unknown>): Promise<void> {
      if (job.kind !== "consolidate") {
        await sql`delete from jobs where user_id = ${job.user_id} and id = ${job.id}`.execute(db);
        return;
      }
      await sql`
        update jobs set status = 'done', finished_at = now(), result = ${JSON.stringify(result ?? {})}::jsonb,
          error = null
        where user_id = ${job.user_id} and id = ${job.id}`.execute(db);
    },

    /**
     * A job failed: queued again after a delay while it has tries left and the failure may pass
     * (`retryable`), else `failed` with the error. A memory job whose memory already has a newer
     * queued job is simply dropped: that one will do the work.
     */
    async fail(job: JobRow, error: string, retryable: boolean): Promise<"retry" | "failed" | "dropped"> {
      if (retryable && job.attempts < MAX_ATTEMPTS) {
        const delay = retryDelayS(job.attempts);
        const r = await sql`
          update jobs set status = 'queued', run_after = now() + make_interval(secs => ${delay}),
            error = ${error}, heartbeat_at = null
          where user_id = ${job.user_id} and id = ${job.id}
            and (kind = 'consolidate' or not exists (
              select 1 from jobs q where q.user_id = ${job.user_id} and q.kind = ${job.kind}
                and q.memory_id = ${job.memory_id} and q.status = 'queued'))`.execute(db);
        if (Number(r.numAffectedRows ?? 0) > 0) return "retry";
        await sql`delete from jobs where user_id = ${job.user_id} and id = ${job.id}`.execute(db);
        return "dropped";
      }
      await sql`
        update jobs set status = 'failed', finished_at = now(), error = ${error}
        where user_id = ${job.user_id} and id = ${job.id}`.execute(db);
      return "failed";
    },

    /**
     * Queues `embed` jobs for live memories without a current vector from `embedderId`, and
     * `extract` jobs for those whose graph was not extracted from their current content by
     * `extractorId` (memories written before this VPS version, or after a change of embedder).
     * Returns how many jobs were queued.
     */
    async backfill(embedderId: string, extractorId: string): Promise<number> {
      // Fresh statistics, so that the anti-joins below are hashed rather than looped.
      await sql`analyze memories, embeddings, graph_extracted`.execute(db);
      const e = await sql`
        insert into jobs (user_id, id, kind, memory_id)
        select m.user_id, gen_random_uuid()::text, 'embed', m.id from memories m
        where not m.deleted and not exists (
          select 1 from embeddings e where e.user_id = m.user_id and e.memory_id = m.id
            and e.model = ${embedderId} and e.content_hash = md5(m.content))
        on conflict (user_id, kind, memory_id) where status = 'queued' do nothing`.execute(db);
      const x = await sql`
        insert into jobs (user_id, id, kind, memory_id)
        select m.user_id, gen_random_uuid()::text, 'extract', m.id from memories m
        where not m.deleted and not exists (
          select 1 from graph_extracted g where g.user_id = m.user_id and g.memory_id = m.id
            and g.extractor = ${extractorId} and g.content_hash = md5(m.content))
        on conflict (user_id, kind, memory_id) where status = 'queued' do nothing`.execute(db);
      return Number(e.numAffectedRows ?? 0) + Number(x.numAffectedRows ?? 0);
    },

    /** Counts by kind and status (metrics, tests). */
    async counts(): Promise<Array<{ kind: string; status: string; n: number }>> {
      const r = await sql<{ kind: string; status: string; n: number | string }>`
        select kind, status, count(*) as n from jobs group by kind, status order by kind, status`.execute(db);
      return r.rows.map((x) => ({ ...x, n: Number(x.n) }));
    },
  };
}
