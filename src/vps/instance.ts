/**
 * Everything one VPS instance runs on top of its database, wired once: auth, sync, the realtime
 * hub (fed by LISTEN on the shared channel), webhooks, metrics and the admin operations.
 */
import type { VpsConfig } from "../core/config.ts";
import { encodeCursor } from "../core/protocol/sync.ts";
import { every } from "../core/schedule.ts";
import { createAdminOps } from "./admin/admin.ts";
import { pruneVps } from "./admin/prune.ts";
import { createAuthService } from "./auth/service.ts";
import { CHANGES_CHANNEL, parseChannelEvent } from "./db/channel.ts";
import type { VpsDatabase } from "./db/database.ts";
import { createHeavyQueries, type HeavyOverrides } from "./heavy.ts";
import { jsonLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { PushHub } from "./push/hub.ts";
import type { HostLookup } from "./push/webhook-target.ts";
import { createWebhookDispatcher } from "./push/webhooks.ts";
import { createSyncService } from "./sync/service.ts";

export interface VpsInstanceOptions {
  log?: Logger;
  /** Injectable clock (ms) for auth and sync, for tests. */
  now?: () => number;
  webhookRetryDelaysMs?: number[];
  /** Host name resolution for webhook targets (tests). */
  webhookLookup?: HostLookup;
  coalesceMs?: number;
  /** Run the background job worker (embeddings, graph, consolidation); `vps serve` does. Tests
   * leave it off and call `heavy.worker.drain()`. */
  worker?: boolean;
  /** Share of the time the worker may be busy in a backlog (see JobWorkerOptions.busyShare). */
  workerBusyShare?: number;
  /** Replacements for the heavy-query adapters (tests). */
  heavy?: HeavyOverrides;
}

/** One VPS instance, wired: what the HTTP app and the CLI work with. */
export type VpsInstance = Awaited<ReturnType<typeof createVpsInstance>>;

/** Wires one instance and starts listening for changes from every instance. */
export async function createVpsInstance(
  config: VpsConfig,
  database: VpsDatabase,
  options: VpsInstanceOptions = {},
) {
  const log = options.log ?? jsonLogger();
  const now = options.now ? { now: options.now } : {};
  const auth = createAuthService(database.db, {
    access_token_ttl_s: config.access_token_ttl_s,
    refresh_token_ttl_s: config.refresh_token_ttl_s,
    max_devices_per_user: config.max_devices_per_user,
    ...now,
  });
  // The worker's own writes (vectors, consolidation) reach webhooks like pushes do; the
  // dispatcher is made below, once the sync service that reads the feed position exists.
  let serverChanged: (userId: string) => void = () => {};
  const heavy = createHeavyQueries(config, database, log, {
    ...(options.workerBusyShare ? { workerBusyShare: options.workerBusyShare } : {}),
    ...options.heavy,
    onChanges: (userId) => serverChanged(userId),
  });
  await heavy.init();
  const sync = createSyncService(database.db, {
    max_content_bytes: config.max_content_bytes,
    max_clock_skew_ms: config.max_clock_skew_ms,
    embeddingModel: heavy.embedder.id,
    ...now,
  });
  const epoch = await sync.getEpoch();
  const cursorFor = (seq: number) => encodeCursor(epoch, seq);
  const hub = new PushHub({ cursorFor, ...(options.coalesceMs ? { coalesceMs: options.coalesceMs } : {}) });
  const webhooks = createWebhookDispatcher(database.db, {
    cursorFor,
    log,
    allowPrivate: config.webhook_allow_private,
    maxPerUser: config.max_webhooks_per_user,
    ...(options.webhookLookup ? { lookup: options.webhookLookup } : {}),
    ...(options.webhookRetryDelaysMs ? { retryDelaysMs: options.webhookRetryDelaysMs } : {}),
  });
  serverChanged = (userId) =>
    void sync.currentCursor(userId).then(
      ({ seq }) => webhooks.dispatch(userId, seq),
      (err) =>
        log({ level: "error", msg: "webhook dispatch after a server write failed", error: String(err) }),
    );
  const metrics = new Metrics();
  metrics.gauge(
    "dionysus_sse_connections",
    "Open GET /v1/events streams on this instance.",
    () => hub.connections,
  );
  metrics.gauge(
    "dionysus_connected_devices",
    "Devices with an open event stream on this instance.",
    () => hub.devices,
  );
  metrics.gauge(
    "dionysus_vector_cache_bytes",
    "Decoded vectors held in memory for exact semantic search on this instance.",
    () => heavy.vectors.stats().bytes,
  );
  metrics.gauge(
    "dionysus_webhook_deliveries_pending",
    "Webhook deliveries queued or in flight.",
    () => webhooks.pending,
  );

  const unlisten = await database.listen(CHANGES_CHANNEL, (payload) => {
    const ev = parseChannelEvent(payload);
    if (ev?.type === "changes") {
      hub.poke(ev.user_id, ev.seq);
      // New writes mean new embed and extract jobs.
      heavy.worker.wake();
    } else if (ev?.type === "revoke") hub.disconnectDevice(ev.user_id, ev.device_id);
    else if (ev?.type === "job") hub.sendJob(ev.user_id, ev.job);
    else if (ev?.type === "wake") heavy.worker.wake();
  });
  if (options.worker) heavy.startWorker();
  // Pruning runs where the job worker runs (`vps serve`, or `vps worker`); several at once is harmless.
  const stopPruning = options.worker
    ? every(config.prune_interval_s * 1000, async () => {
        try {
          const counts = await pruneVps(database.db, {
            conflictRetentionDays: config.conflict_retention_days,
            failedJobRetentionDays: config.failed_job_retention_days,
            ...now,
          });
          log({ level: "debug", msg: "pruned", ...counts });
        } catch (err) {
          log({ level: "error", msg: "pruning failed", error: String(err) });
        }
      })
    : () => {};

  return {
    config,
    database,
    log,
    auth,
    sync,
    hub,
    webhooks,
    metrics,
    admin: createAdminOps(auth, database.db, heavy.graphStore),
    heavy,
    cursorFor,
    async stop(): Promise<void> {
      stopPruning();
      hub.closeAll();
      webhooks.stop();
      await heavy.close();
      await unlisten();
    },
  };
}
