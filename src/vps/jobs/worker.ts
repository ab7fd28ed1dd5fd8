/**
 * The background job worker (on PostgreSQL `vps serve` runs it in a child process, `vps worker`
 * alone, see ../worker-process.ts; on PGlite inside `vps serve`). Several may run against one
 * database: `FOR UPDATE SKIP LOCKED` keeps them from taking the same job. Each round
 * it takes, in this order: a batch of `embed` jobs (cheap, and what semantic search waits for),
 * a few `extract` jobs (20-35 ms per KB each), and one `consolidate` job. It sleeps when there is
 * nothing due and wakes on a change poke, on a local enqueue, or after `pollMs`.
 */
import { isDionysusError } from "../../core/errors.ts";
import type { JobQueue, JobRow } from "./queue.ts";

export interface JobHandlers {
  embed(jobs: JobRow[]): Promise<void>;
  extract(job: JobRow): Promise<void>;
  consolidate(job: JobRow, heartbeat: () => Promise<void>): Promise<Record<string, unknown>>;
}

export interface JobWorkerOptions {
  queue: JobQueue;
  handlers: JobHandlers;
  /** Told when a consolidation starts running and when it ends (for the `job` SSE event). */
  onJobEvent?: (job: JobRow, status: "running" | "done" | "failed") => void | Promise<void>;
  log?: (event: Record<string, unknown>) => void;
  /** Sleep between polls when idle (ms), 2000 by default. */
  pollMs?: number;
  /** Most of the time the worker may be busy while it works through a backlog (0..1, 0.5 by
   * default): it shares the server's event loop and CPU with the API, which stays responsive. */
  busyShare?: number;
  embedBatch?: number;
  extractBatch?: number;
}

const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));
/** Failures worth retrying: a dependency down (Ollama, Neo4j, the database), or anything unknown. */
const retryable = (err: unknown) =>
  !isDionysusError(err) || err.code === "unavailable" || err.code === "busy";

export class JobWorker {
  private running = false;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private endRest: (() => void) | undefined;
  private pending = false;
  private readonly o: Required<Omit<JobWorkerOptions, "onJobEvent" | "log">> &
    Pick<JobWorkerOptions, "onJobEvent" | "log">;

  constructor(options: JobWorkerOptions) {
    this.o = { pollMs: 2000, embedBatch: 64, extractBatch: 8, busyShare: 0.5, ...options };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.endRest?.();
    this.wake();
    await this.loop;
  }

  /** Runs a round now instead of at the next poll. */
  wake(): void {
    this.pending = true;
    this.wakeUp?.();
  }

  /** Processes due jobs until none is left (tests, and the loop). Returns how many ran. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.round();
      total += n;
      if (n === 0) return total;
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.pending = false;
      let n = 0;
      const started = performance.now();
      try {
        n = await this.round();
      } catch (err) {
        this.o.log?.({ level: "error", msg: "job worker round failed", error: describe(err) });
      }
      if (n > 0 && this.running) {
        // Rest in proportion to the work done, so that a backlog never takes over the server.
        const busy = performance.now() - started;
        const share = Math.min(1, Math.max(0.05, this.o.busyShare));
        await this.rest(Math.min(5000, (busy * (1 - share)) / share));
        continue;
      }
      if (this.pending || !this.running) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.o.pollMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = undefined;
    }
  }

  /** Waits `ms`; only `stop()` cuts it short (new work does not: that is the point). */
  private rest(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.endRest = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      this.endRest = undefined;
    });
  }

  /** One round: a batch of embed jobs, a few extract jobs, one consolidation. */
  private async round(): Promise<number> {
    const { queue, handlers } = this.o;
    let n = 0;
    const embeds = await queue.claim(["embed"], this.o.embedBatch);
    if (embeds.length > 0) {
      n += embeds.length;
      try {
        await handlers.embed(embeds);
        await queue.finishMany(embeds);
      } catch (err) {
        this.o.log?.({ level: "warn", msg: "embed jobs failed", jobs: embeds.length, error: describe(err) });
        for (const j of embeds) await queue.fail(j, describe(err), retryable(err));
      }
    }
    const extracts = await queue.claim(["extract"], this.o.extractBatch);
    for (const j of extracts) {
      n++;
      // Let requests that arrived meanwhile run between two extractions.
      await new Promise((resolve) => setImmediate(resolve));
      try {
        await handlers.extract(j);
        await queue.finish(j);
      } catch (err) {
        this.o.log?.({
          level: "warn",
          msg: "extract job failed",
          memory_id: j.memory_id,
          error: describe(err),
        });
        await queue.fail(j, describe(err), retryable(err));
      }
    }
    const [job] = await queue.claim(["consolidate"], 1);
    if (job) {
      n++;
      await this.o.onJobEvent?.(job, "running");
      let beat = Date.now();
      const heartbeat = async () => {
        if (Date.now() - beat < 10_000) return;
        beat = Date.now();
        await queue.heartbeat(job);
      };
      try {
        const result = await handlers.consolidate(job, heartbeat);
        await queue.finish(job, result);
        this.o.log?.({ msg: "consolidation done", user_id: job.user_id, job_id: job.id, ...result });
        await this.o.onJobEvent?.({ ...job, status: "done" }, "done");
      } catch (err) {
        this.o.log?.({ level: "error", msg: "consolidation failed", job_id: job.id, error: describe(err) });
        const outcome = await queue.fail(job, describe(err), retryable(err));
        if (outcome === "failed") await this.o.onJobEvent?.({ ...job, status: "failed" }, "failed");
      }
    }
    return n;
  }
}
