/**
 * Plugs the sync engine into the edge daemon: it starts with the daemon, hears about every
 * local write, and feeds `/health` and `/v1/sync/status`.
 */
import type { EdgeConfig } from "../../core/config.ts";
import { DionysusError } from "../../core/errors.ts";
import type { EdgeServices } from "../daemon.ts";
import { SyncEngine } from "./engine.ts";

export interface SyncServices extends EdgeServices {
  /** The running engine (after the daemon started). */
  engine(): SyncEngine | undefined;
}

export function createSyncServices(
  config: EdgeConfig,
  opts: { log?: (event: Record<string, unknown>) => void } = {},
): SyncServices {
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
      });
      engine.start();
    },
    onStop: async () => {
      await engine?.stop();
    },
    onLocalWrite: () => engine?.notifyLocalWrite(),
    syncStatus: () => engine?.status() ?? {},
    online: () => engine?.isOnline() ?? false,
    auth: () => engine?.authState() ?? "none",
    syncNow: () => {
      if (!engine) throw new DionysusError("unavailable", "the sync engine is not running");
      return engine.syncNow();
    },
  };
}
