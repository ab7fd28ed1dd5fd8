/**
 * The edge daemon: the local HTTP API on `config.host:config.port` (127.0.0.1:8080 by default)
 * over the data dir's database, announced in `<data_dir>/daemon.json`. One daemon per data dir,
 * enforced by an OS lock on `<data_dir>/daemon.lock` held for the daemon's life (the kernel drops
 * it however the process ends, so a crash never blocks the next start). The API needs the token
 * in `<data_dir>/api-token` (created on the first start). A non-loopback address is refused
 * unless `allowRemote` says the user wants the API on the network.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import type { EdgeConfig } from "../core/config.ts";
import { DionysusError } from "../core/errors.ts";
import { VERSION } from "../core/version.ts";
import { type FileLock, tryLockFile } from "../platform/file-lock.ts";
import { apiTokenPath, ensureApiToken } from "./api-token.ts";
import {
  createDaemonInfoExclusive,
  type DaemonInfo,
  daemonFilePath,
  daemonUrl,
  dbPath,
  lockFilePath,
  pidAlive,
  readDaemonInfo,
  readLockPid,
  removeDaemonInfo,
  removeDaemonInfoIf,
  writeDaemonInfo,
} from "./daemon-file.ts";
import { diskFullError, isDiskFull } from "./disk.ts";
import { createEdgeApp, type EdgeAppDeps } from "./http/app.ts";
import { isLoopbackName } from "./http/guard.ts";
import { type IndexMerger, type IndexMergerOptions, startIndexMerger } from "./index-merger.ts";
import { checkIntegrityInBackground, createSqliteStore } from "./store/sqlite/index.ts";
import type { EdgeStore } from "./store/types.ts";

/** What plugs into the daemon: the sync engine (see sync/hooks.ts) and the VPS query client. */
export interface DaemonHooks
  extends Omit<EdgeAppDeps, "store" | "config" | "ready" | "apiToken" | "apiTokenPath"> {
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
  hooks?: DaemonHooks;
  /** Stop cleanly on SIGINT/SIGTERM and exit (the `serve` command); default false. */
  handleSignals?: boolean;
  /**
   * Run `PRAGMA quick_check` on the daemon's own database (default true). It runs on a worker
   * thread while the daemon already answers reads; writes wait for it, and a failure stops the
   * daemon with `db_corrupt`. Not run on a store passed in `store`.
   */
  integrityCheck?: boolean;
  /** Listen on a `config.host` that is not a loopback address (`serve --allow-remote`). */
  allowRemote?: boolean;
  /** Merging the keyword index while idle (index-merger.ts): its options (log, clock and timers
   * for tests), or false for none. On by default, once the integrity check passed; an API request
   * (other than /health) counts as activity, like a write. */
  indexMerge?: Omit<IndexMergerOptions, "store"> | false;
}

export interface EdgeDaemon {
  /** The URL a client on this machine uses (`http://127.0.0.1:PORT` for a wildcard address). */
  url: string;
  /** The address the socket is bound to, as the OS reports it (`127.0.0.1`, `0.0.0.0`, `::1`…). */
  host: string;
  port: number;
  /** Whether `host` is reachable from other machines (not a loopback address). */
  remote: boolean;
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

function alreadyRunning(dataDir: string, pid: number | undefined, other?: DaemonInfo): DionysusError {
  const where = other ? (other.port === null ? ", starting" : `, ${daemonUrl(other.host, other.port)}`) : "";
  return new DionysusError(
    "busy",
    `a dionysus daemon is already running for ${dataDir}${pid === undefined ? "" : ` (pid ${pid}${where})`}; stop it first or use another --data-dir`,
    { details: pid === undefined ? {} : { pid } },
  );
}

/**
 * Takes the data dir's OS lock, or explains who holds it. The holder's pid is written into the
 * lock file for that explanation (best effort: on a full disk it stays empty).
 */
function lockDataDir(dataDir: string): FileLock & { supported: boolean } {
  let lock: ReturnType<typeof tryLockFile>;
  try {
    lock = tryLockFile(lockFilePath(dataDir));
  } catch (cause) {
    if (isDiskFull(cause, dataDir)) throw diskFullError(dataDir, "dionysus serve cannot start", cause);
    throw cause;
  }
  if (!lock) {
    const other = readDaemonInfo(dataDir);
    const pid = readLockPid(dataDir) ?? other?.pid;
    throw alreadyRunning(dataDir, pid, other?.pid === pid ? other : undefined);
  }
  try {
    writeFileSync(lockFilePath(dataDir), `${process.pid}\n`, { mode: 0o600 });
  } catch {
    // only used to name the holder in the message above
  }
  return lock;
}

/**
 * With the lock held, a daemon.json left behind names a daemon that died; it is removed. Only a
 * daemon of a version without the lock could still run: one that answers is respected.
 */
async function clearStaleDaemonInfo(dataDir: string): Promise<void> {
  const other = readDaemonInfo(dataDir);
  if (other && other.pid !== process.pid && pidAlive(other.pid) && (await answersHealth(other)))
    throw alreadyRunning(dataDir, other.pid, other);
  rmSync(daemonFilePath(dataDir), { force: true });
}

/** Where the OS has no lock (`flock`): claims `daemon.json` for this process, or explains who
 * holds the data dir. */
async function claimDataDir(dataDir: string, info: DaemonInfo): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (createDaemonInfoExclusive(dataDir, info)) return;
    const other = readDaemonInfo(dataDir);
    if (other && pidAlive(other.pid)) {
      const young = Date.now() - Date.parse(other.started_at) < STARTING_GRACE_MS;
      if (other.pid === process.pid || young || (await answersHealth(other)))
        throw alreadyRunning(dataDir, other.pid, other);
    }
    // A leftover from a daemon that died (or an unreadable file): take it over, unless another
    // process replaced it meanwhile.
    removeDaemonInfoIf(dataDir, (current) => current?.started_at === other?.started_at);
  }
  throw new DionysusError("busy", `could not claim ${dataDir}/daemon.json; is another daemon starting?`);
}

export async function startEdgeDaemon(opts: StartEdgeDaemonOptions): Promise<EdgeDaemon> {
  const { config, hooks = {} } = opts;
  if (!opts.allowRemote && !isLoopbackName(config.host))
    throw new DionysusError(
      "invalid_input",
      `--host ${config.host} is not a loopback address: the local API would be reachable from other machines; pass --allow-remote if that is what you want (requests still need the API token)`,
    );
  const dataDir = config.data_dir;
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  } catch (cause) {
    if (isDiskFull(cause, dataDir)) throw diskFullError(dataDir, "dionysus serve cannot start", cause);
    throw cause;
  }
  const info: DaemonInfo = {
    pid: process.pid,
    host: config.host,
    port: null,
    started_at: new Date().toISOString(),
    version: VERSION,
  };
  const lock = lockDataDir(dataDir);

  let store: EdgeStore | undefined = opts.store;
  const ownStore = store === undefined;
  let server: ReturnType<typeof Bun.serve> | undefined;
  const mergeClock = (opts.indexMerge || undefined)?.now ?? Date.now;
  let lastRequestAt = Number.NEGATIVE_INFINITY;
  let integrity: Promise<void> | undefined;
  let host = config.host;
  let port = config.port;
  try {
    if (lock.supported) await clearStaleDaemonInfo(dataDir);
    else await claimDataDir(dataDir, info);
    const apiToken = ensureApiToken(dataDir);
    store ??= createSqliteStore({
      path: dbPath(dataDir),
      maxContentBytes: config.max_content_bytes,
      integrityCheck: false,
      // The daemon must not lock every other process out of the file; it refuses to start.
      fullDiskFallback: false,
    });
    if (ownStore && opts.integrityCheck !== false) {
      integrity = checkIntegrityInBackground(dbPath(dataDir));
      integrity.catch(() => {}); // observed below; writes see the rejection themselves
    }
    const app = createEdgeApp({
      ...hooks,
      store,
      config,
      apiToken,
      apiTokenPath: apiTokenPath(dataDir),
      ...(integrity ? { ready: integrity } : {}),
    });
    try {
      server = Bun.serve({
        hostname: config.host,
        port: config.port,
        fetch: (req, srv) => {
          // The index merger waits for a quiet API too (health checks do not count).
          if (!req.url.endsWith("/health")) lastRequestAt = mergeClock();
          return app.fetch(req, srv);
        },
      });
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
    // What the OS actually bound (`localhost` becomes an address), for daemon.json and the banner.
    host = (server as { address?: { address?: string } }).address?.address ?? server.hostname ?? config.host;
    port = server.port ?? config.port;
    // Announced only now, atomically: a start that fails leaves no daemon.json, empty or not.
    writeDaemonInfo(dataDir, { ...info, host, port });
  } catch (err) {
    await server?.stop(true);
    if (ownStore) store?.close();
    removeDaemonInfo(dataDir, process.pid);
    lock.release();
    if (isDiskFull(err, dataDir)) throw diskFullError(dataDir, "dionysus serve cannot start", err);
    throw err;
  }

  const url = daemonUrl(host, port);
  let stopping: Promise<void> | undefined;
  let merger: IndexMerger | undefined;
  const liveStore = store;
  const liveServer = server;
  const onSignal = () => {
    void daemon.stop().finally(() => process.exit(0));
  };
  const daemon: EdgeDaemon = {
    url,
    host,
    port,
    remote: !isLoopbackName(host),
    store: liveStore,
    stop() {
      stopping ??= (async () => {
        if (opts.handleSignals) {
          process.off("SIGINT", onSignal);
          process.off("SIGTERM", onSignal);
        }
        await liveServer.stop(true);
        merger?.stop();
        try {
          await hooks.onStop?.();
        } finally {
          if (ownStore) liveStore.close();
          removeDaemonInfo(dataDir, process.pid);
          lock.release();
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
    if (opts.indexMerge !== false && !stopping)
      merger = startIndexMerger({
        store: liveStore,
        activeAt: () => lastRequestAt,
        embed: (maxMs) => liveStore.embedPending(maxMs),
        ...opts.indexMerge,
      });
    await hooks.onStart?.(daemon);
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return daemon;
}
