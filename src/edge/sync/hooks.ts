/**
 * Plugs the sync engine into the edge daemon: it starts with the daemon, hears about every
 * local write, and feeds `/health`, `/v1/sync/status` and `POST /v1/sync/run`.
 */
import type { EdgeConfig } from "../../core/config.ts";
import { DionysusError } from "../../core/errors.ts";
import type { DaemonHooks } from "../daemon.ts";
import type { SyncControl } from "../http/app.ts";
import { SyncEngine } from "./engine.ts";

export interface SyncHooks extends DaemonHooks {
  sync: SyncControl;
  /** The running engine (after the daemon started). */
  engine(): SyncEngine | undefined;
}

export function createSyncHooks(
  config: EdgeConfig,
  opts: { log?: (event: Record<string, unknown>) => void; retryScale?: number } = {},
): SyncHooks {
  let engine: SyncEngine | undefined;
  return {
    engine: () => engine,
    onStart: (daemon) => {
      engine = new SyncEngine({
        store: daemon.store,
        dataDir: config.data_dir,
        intervalMs: config.sync_interval_s * 1000,
        storageLimitBytes: config.storage_limit_bytes,
        ...(opts.log ? { log: opts.log } : {}),
        ...(opts.retryScale !== undefined ? { retryScale: opts.retryScale } : {}),
      });
      engine.start();
    },
    onStop: async () => {
      await engine?.stop();
    },
    sync: {
      onLocalWrite: () => engine?.notifyLocalWrite(),
      status: () => engine?.status() ?? {},
      online: () => engine?.isOnline() ?? false,
      auth: () => engine?.authState() ?? "none",
      syncNow: () => {
        if (!engine) throw new DionysusError("unavailable", "the sync engine is not running");
        return engine.syncNow();
      },
    },
  };
}
