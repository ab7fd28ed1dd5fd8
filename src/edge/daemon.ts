/**
 * The edge daemon: the local HTTP API on `config.host:config.port` (127.0.0.1:8080 by default)
 * over the data dir's database, announced in `<data_dir>/daemon.json`. One daemon per data dir.
 */
import { mkdirSync } from "node:fs";
import type { EdgeConfig } from "../core/config.ts";
import { DionysusError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import {
  createDaemonInfoExclusive,
  type DaemonInfo,
  daemonUrl,
  dbPath,
  pidAlive,
  readDaemonInfo,
  removeDaemonInfo,
  removeDaemonInfoIf,
  writeDaemonInfo,
} from "./daemon-file.ts";
import { createEdgeApp, type EdgeAppDeps } from "./http/app.ts";
import { checkIntegrityInBackground, createSqliteStore } from "./store/sqlite/index.ts";
import type { EdgeStore } from "./store/types.ts";

/** What the sync engine (and later the router) plug into the daemon. */
export interface EdgeServices extends Omit<EdgeAppDeps, "store" | "config" | "ready"> {
  /** Called once the daemon listens and its database passed the integrity check (start
   * background work here); `startEdgeDaemon` resolves after it. */
  onStart?: (daemon: EdgeDaemon) => void | Promise<void>;
  /** Called on stop, before the store is closed. */
  onStop?: () => void | Promise<void>;
}

export interface StartEdgeDaemonOptions {
  config: EdgeConfig;
  /** A store to serve; by default `<data_dir>/edge.db` is opened (and closed on stop). */
  store?: EdgeStore;
  services?: EdgeServices;
  /** Stop cleanly on SIGINT/SIGTERM and exit (the `serve` command); default false. */
  handleSignals?: boolean;
  /**
   * Run `PRAGMA quick_check` on the daemon's own database (default true). It runs on a worker
   * thread while the daemon already answers reads; writes wait for it, and a failure stops the
   * daemon with `db_corrupt`. Not run on a store passed in `store`.
   */
  integrityCheck?: boolean;
}

export interface EdgeDaemon {
  url: string;
  host: string;
  port: number;
  store: EdgeStore;
  stop(): Promise<void>;
}

/** How long a daemon.json naming a live pid that does not answer may be considered "starting". */
const STARTING_GRACE_MS = 30_000;

async function answersHealth(info: DaemonInfo): Promise<boolean> {
  if (info.port === null) return false;
  try {
    const res = await fetch(`${daemonUrl(info.host, info.port)}/health`, {
      signal: AbortSignal.timeout(1000),
    });
    return res.ok;
  } catch {
    return false;
  }
}

/** Claims `daemon.json` for this process, or explains who holds the data dir. */
async function claimDataDir(dataDir: string, info: DaemonInfo): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createDaemonInfoExclusive(dataDir, info)) return;
    const other = readDaemonInfo(dataDir);
    if (other && pidAlive(other.pid)) {
      const young = Date.now() - Date.parse(other.started_at) < STARTING_GRACE_MS;
      if (other.pid === process.pid || young || (await answersHealth(other))) {
        const where = other.port === null ? "starting" : daemonUrl(other.host, other.port);
        throw new DionysusError(
          "busy",
          `a dionysus daemon is already running for ${dataDir} (pid ${other.pid}, ${where}); stop it first or use another --data-dir`,
          { details: { pid: other.pid } },
        );
      }
    }
    // A leftover from a daemon that died (or an unreadable file): take it over, unless another
    // process replaced it meanwhile.
    removeDaemonInfoIf(dataDir, (current) => current?.started_at === other?.started_at);
  }
  throw new DionysusError("busy", `could not claim ${dataDir}/daemon.json; is another daemon starting?`);
}

export async function startEdgeDaemon(opts: StartEdgeDaemonOptions): Promise<EdgeDaemon> {
  const { config, services = {} } = opts;
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const info: DaemonInfo = {
    pid: process.pid,
    host: config.host,
    port: null,
    started_at: new Date().toISOString(),
    version: VERSION,
  };
  await claimDataDir(config.data_dir, info);

  let store: EdgeStore | undefined = opts.store;
  const ownStore = store === undefined;
  let server: ReturnType<typeof Bun.serve> | undefined;
  let integrity: Promise<void> | undefined;
  try {
    store ??= createSqliteStore({
      path: dbPath(config.data_dir),
      maxContentBytes: config.max_content_bytes,
      integrityCheck: false,
    });
    if (ownStore && opts.integrityCheck !== false) {
      integrity = checkIntegrityInBackground(dbPath(config.data_dir));
      integrity.catch(() => {}); // observed below; writes see the rejection themselves
    }
    const app = createEdgeApp({ ...services, store, config, ...(integrity ? { ready: integrity } : {}) });
    try {
      server = Bun.serve({ hostname: config.host, port: config.port, fetch: app.fetch });
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE")
        throw new DionysusError(
          "busy",
          `port ${config.port} on ${config.host} is already in use; choose another with --port or DIONYSUS_PORT`,
          { cause },
        );
      throw new DionysusError(
        "unavailable",
        `cannot listen on ${config.host}:${config.port}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
  } catch (err) {
    if (ownStore) store?.close();
    removeDaemonInfo(config.data_dir, process.pid);
    throw err;
  }

  const port = server.port ?? config.port;
  const url = daemonUrl(config.host, port);
  writeDaemonInfo(config.data_dir, { ...info, port });

  let stopping: Promise<void> | undefined;
  const liveStore = store;
  const liveServer = server;
  const onSignal = () => {
    void daemon.stop().finally(() => process.exit(0));
  };
  const daemon: EdgeDaemon = {
    url,
    host: config.host,
    port,
    store: liveStore,
    stop() {
      stopping ??= (async () => {
        if (opts.handleSignals) {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
        await liveServer.stop(true);
        try {
          await services.onStop?.();
        } finally {
          if (ownStore) liveStore.close();
          removeDaemonInfo(config.data_dir, process.pid);
        }
      })();
      return stopping;
    },
  };
  if (opts.handleSignals) {
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  }
  try {
    await integrity;
    liveStore.requeueSyncing();
    await services.onStart?.(daemon);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return daemon;
}
