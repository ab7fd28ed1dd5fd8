/**
 * The job worker (embeddings, entity extraction, consolidation) in a process of its own, so that
 * its CPU-heavy work (extraction costs 20-35 ms per KB) never delays a push, a pull or an event
 * on the API's event loop. `dionysus vps serve` on PostgreSQL starts one as its child and restarts
 * it if it dies; `dionysus vps worker` runs one alone (any number of them may work one database:
 * jobs are claimed with `FOR UPDATE SKIP LOCKED`).
 *
 * Embedded PGlite is one process's file: a second process (or a Worker thread, which would need
 * its own copy of the database engine) cannot open it, so on PGlite the worker stays inside
 * `vps serve`, where it yields as much time as it works.
 */
import { setPriority } from "node:os";
import type { VpsConfig } from "../core/config.ts";
import { DionysusError } from "../core/errors.ts";
import { createVpsDatabase } from "./db/database.ts";
import { createVpsInstance } from "./instance.ts";
import { jsonLogger, type Logger } from "./log.ts";

/** Why PGlite cannot run the worker apart from the server (one line, for the CLI). */
export const PGLITE_ONE_PROCESS =
  "the embedded database (PGlite) can be opened by one process only, so its job worker runs inside `vps serve`; set database_url (PostgreSQL) to run the worker apart";

export interface RunningWorker {
  stop(): Promise<void>;
}

/** Opens the database and runs the job worker (no HTTP server) until `stop()`. */
export async function runVpsWorker(
  config: VpsConfig,
  options: { log?: Logger } = {},
): Promise<RunningWorker> {
  if (!config.database_url) throw new DionysusError("invalid_input", `vps worker: ${PGLITE_ONE_PROCESS}`);
  const log = options.log ?? jsonLogger(undefined, config.log_level);
  const database = await createVpsDatabase(config, { log, poolSize: 4 });
  // The whole instance minus HTTP: change pokes wake the worker, and the worker's own writes
  // (vectors, consolidation results) fire webhooks as pushes do.
  const services = await createVpsInstance(config, database, { worker: true, workerBusyShare: 1, log });
  services.log({ msg: "vps worker running", pid: process.pid });
  let stopped = false;
  return {
    async stop() {
      if (stopped) return;
      stopped = true;
      await services.stop();
      await database.close();
    },
  };
}

/** The child's niceness (Unix scheduling priority, 0 normal, 19 lowest). */
const WORKER_NICENESS = 10;

export interface WorkerChild {
  /** Stops the child (SIGTERM, then SIGKILL after 10 s) and stops restarting it. */
  stop(): Promise<void>;
  readonly pid: number | undefined;
}

/**
 * Runs `command` (the binary's own `vps worker`) as a child and restarts it when it exits, after
 * 1 s, doubling up to 30 s while it keeps failing within a minute of starting. It runs at a lower
 * CPU priority (niceness 10), and, alone in its process, works through a backlog without the
 * rests the in-process worker takes to leave the event loop to requests. The child's stdin
 * is a pipe it watches: when this process dies, however, the child sees end-of-file and stops.
 */
export function superviseWorker(
  command: string[],
  env: Record<string, string | undefined>,
  log: Logger,
): WorkerChild {
  let child: ReturnType<typeof Bun.spawn> | undefined;
  let stopping = false;
  let delay = 500;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const start = () => {
    const startedAt = Date.now();
    const proc = Bun.spawn(command, { env, stdin: "pipe", stdout: "inherit", stderr: "inherit" });
    child = proc;
    // A lower CPU priority: when the cores are busy, the API's requests go first.
    try {
      setPriority(proc.pid, WORKER_NICENESS);
    } catch {}
    void proc.exited.then((code) => {
      if (stopping) return;
      delay = Date.now() - startedAt > 60_000 ? 1000 : Math.min(30_000, delay * 2);
      log({ level: "error", msg: "job worker process exited; restarting", exit_code: code, in_ms: delay });
      timer = setTimeout(start, delay);
    });
  };
  start();
  return {
    get pid() {
      return child?.pid;
    },
    async stop() {
      stopping = true;
      if (timer) clearTimeout(timer);
      const proc = child;
      if (!proc || proc.exitCode !== null) return;
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await proc.exited;
      clearTimeout(killer);
    },
  };
}
