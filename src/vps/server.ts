/**
 * Starts one VPS instance: opens (and migrates) the database, wires the services and serves the
 * Hono app with Bun. On PGlite the data dir belongs to this one process: `<data_dir>/vps.json`
 * (owner-only) records the pid, the port and a random admin token, so that `dionysus vps ...`
 * admin commands can reach the running server through its loopback `/admin/*` API.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { VpsConfig } from "../core/config.ts";
import { DionysusError } from "../core/errors.ts";
import { pidAlive } from "../platform/file-lock.ts";
import { randomSecret } from "./auth/secrets.ts";
import { createVpsDatabase } from "./db/database.ts";
import { describeHolder, tryLockPglite } from "./db/pglite-lock.ts";
import { createVpsApp } from "./http/app.ts";
import { listeningUrl } from "./http/listen-url.ts";
import { createVpsInstance } from "./instance.ts";
import { jsonLogger, type Logger } from "./log.ts";
import { PGLITE_ONE_PROCESS, superviseWorker } from "./worker-process.ts";

/** What `vps serve` writes to `<data_dir>/vps.json` (mode 0600). */
export interface ServerFile {
  pid: number;
  port: number;
  /** Loopback URL of the server, for admin commands. */
  admin_url: string;
  admin_token: string;
  database: "postgres" | "pglite";
}

export const serverFilePath = (dataDir: string) => join(dataDir, "vps.json");

/** The running server recorded in the data dir, if its process is alive. */
export function readServerFile(dataDir: string): ServerFile | undefined {
  const path = serverFilePath(dataDir);
  if (!existsSync(path)) return undefined;
  try {
    const f = JSON.parse(readFileSync(path, "utf8")) as ServerFile;
    return typeof f.pid === "number" && pidAlive(f.pid) ? f : undefined;
  } catch {
    return undefined;
  }
}

export interface RunningVps {
  url: string;
  port: number;
  /**
   * Settles with the error if the database dies under the server (embedded PGlite after a PANIC,
   * e.g. the disk filled up): requests get 503 from then on, and the process should stop.
   */
  readonly fatal: Promise<DionysusError>;
  /** Stops; `graceful` lets requests in flight get their answers (event streams are closed). */
  stop(options?: { graceful?: boolean }): Promise<void>;
}

export interface StartVpsOptions {
  log?: Logger;
  /** Seconds between the event streams' heartbeat comments (default 15; tests shorten it). */
  heartbeatS?: number;
  /** The server's wall clock in ms (tests step it back and forth). */
  now?: () => number;
  /** Where start-up warnings go (one plain line each); stderr by default. */
  warn?: (line: string) => void;
  /** Least free disk space for the embedded database to start (see createVpsDatabase). */
  minFreeBytes?: number;
  /**
   * Where the job worker runs: in this process (the default; always so on PGlite), in a child
   * process started with `workerCommand` (`dionysus vps worker`; PostgreSQL only), or nowhere
   * (an API-only instance; PostgreSQL only, another instance or `vps worker` does the jobs).
   */
  worker?: "in-process" | "process" | "off";
  /** The command that runs `vps worker` (the binary and its arguments), for `worker: "process"`. */
  workerCommand?: string[];
}

export async function startVpsServer(config: VpsConfig, options: StartVpsOptions = {}): Promise<RunningVps> {
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const log = options.log ?? jsonLogger(undefined, config.log_level);
  const kind = config.database_url ? "postgres" : "pglite";
  const workerMode =
    kind === "pglite" && options.worker === "process" ? "in-process" : (options.worker ?? "in-process");
  if (kind === "pglite" && workerMode === "off")
    throw new DionysusError("invalid_input", `--no-worker: ${PGLITE_ONE_PROCESS}`);
  if (workerMode === "process" && !options.workerCommand?.length)
    throw new DionysusError("invalid_input", "a worker process needs the command that runs `vps worker`");
  let releaseLock = () => {};
  if (kind === "pglite") {
    // An admin command may hold the data dir for a moment: wait for it, but not for another server.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const lock = tryLockPglite(config.data_dir);
      if ("release" in lock) {
        releaseLock = lock.release;
        break;
      }
      if (readServerFile(config.data_dir) || Date.now() > deadline)
        throw new DionysusError(
          "busy",
          `${describeHolder(lock.holder)} has ${config.data_dir} open; its embedded database can have one process only`,
        );
      await Bun.sleep(200);
    }
  }
  let database: Awaited<ReturnType<typeof createVpsDatabase>>;
  try {
    database = await createVpsDatabase(config, {
      log,
      ...(options.minFreeBytes === undefined ? {} : { minFreeBytes: options.minFreeBytes }),
    });
  } catch (err) {
    releaseLock();
    throw err;
  }
  const fatal = new Promise<DionysusError>((resolve) => database.onFatal(resolve));
  const services = await createVpsInstance(config, database, {
    worker: workerMode === "in-process",
    log,
    ...(options.now ? { now: options.now } : {}),
  });
  const adminToken = randomSecret("dnx");
  let listenUrl: string | undefined;
  const app = createVpsApp({
    vps: services,
    adminToken,
    listenUrl: () => listenUrl,
    ...(options.heartbeatS === undefined ? {} : { heartbeatS: options.heartbeatS }),
  });
  let server: ReturnType<typeof Bun.serve>;
  try {
    server = Bun.serve({
      hostname: config.host,
      port: config.port,
      idleTimeout: 30,
      fetch: (req, srv) => {
        if (!req.url.startsWith("/")) return app.fetch(req, srv);
        // A request without a Host header (HTTP/1.0, such as HAProxy's default health check)
        // has a URL that is only a path, which the router cannot read. It gets the listening
        // address; the socket stays the original request's (peer address, timeouts).
        const whole = new Request(new URL(req.url, listenUrl ?? "http://localhost").href, req);
        return app.fetch(whole, {
          requestIP: () => srv.requestIP(req),
          timeout: (_r: Request, seconds: number) => srv.timeout(req, seconds),
        });
      },
    });
  } catch (cause) {
    await services.stop();
    await database.close();
    throw new DionysusError(
      "busy",
      `cannot listen on ${config.host}:${config.port}: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
  const port = server.port ?? config.port;
  listenUrl = listeningUrl(config.host, port);
  if (!config.public_url)
    (options.warn ?? ((line: string) => process.stderr.write(`${line}\n`)))(
      `dionysus vps: warning: public_url is not set; sign-in links (verification_uri) will use ${listenUrl}, the listening address. Set public_url to the URL users reach this server at.`,
    );
  const loopback = config.host === "0.0.0.0" || config.host === "::" ? "127.0.0.1" : config.host;
  const file: ServerFile = {
    pid: process.pid,
    port,
    admin_url: `http://${loopback.includes(":") ? `[${loopback}]` : loopback}:${port}`,
    admin_token: adminToken,
    database: kind,
  };
  const path = serverFilePath(config.data_dir);
  writeFileSync(path, JSON.stringify(file, null, 2), { mode: 0o600 });
  chmodSync(path, 0o600);
  // The child gets the database through its environment (never its command line, which `ps` shows).
  const workerChild =
    workerMode === "process"
      ? superviseWorker(
          [...options.workerCommand!, "vps", "worker", "--data-dir", config.data_dir, "--exit-with-stdin"],
          {
            ...process.env,
            DIONYSUS_VPS_DATABASE_URL: config.database_url,
            ...(config.direct_database_url
              ? { DIONYSUS_VPS_DIRECT_DATABASE_URL: config.direct_database_url }
              : {}),
            DIONYSUS_VPS_LOG_LEVEL: config.log_level,
          },
          log,
        )
      : undefined;
  services.log({
    msg: "vps listening",
    url: `http://${config.host}:${port}`,
    database: kind,
    worker: workerMode,
    ...(workerChild ? { worker_pid: workerChild.pid } : {}),
  });
  let stopped = false;
  return {
    url: `http://${loopback.includes(":") ? `[${loopback}]` : loopback}:${port}`,
    port,
    fatal,
    async stop(stopOptions = {}) {
      if (stopped) return;
      stopped = true;
      services.hub.closeAll();
      await server.stop(!stopOptions.graceful);
      await workerChild?.stop();
      await services.stop();
      await database.close();
      const current = readServerFile(config.data_dir);
      if (!current || current.pid === process.pid) rmSync(path, { force: true });
      releaseLock();
    },
  };
}
