import type { Command } from "commander";
import { shouldLog } from "../../core/log-level.ts";
import { every } from "../../core/schedule.ts";
import { VERSION } from "../../core/version.ts";
import { apiTokenPath } from "../../edge/api-token.ts";
import { startEdgeDaemon } from "../../edge/daemon.ts";
import { createVpsQueryClient } from "../../edge/heavy/service.ts";
import type { EdgeStore } from "../../edge/store/types.ts";
import { createSyncHooks } from "../../edge/sync/hooks.ts";
import { edgeConfig } from "../edge-command.ts";
import { action } from "../output.ts";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the edge agent: the local API on 127.0.0.1:8080 over the local database")
    .option("--host <host>", "address to listen on (loopback by default; others need --allow-remote)")
    .option("--port <port>", "port to listen on (0 picks a free one)")
    .option(
      "--allow-remote",
      "allow a --host that other machines can reach (the API token is still required)",
    )
    .option("--json", "print one JSON line {url, host, port, pid, ...} once listening")
    .option("--log-level <level>", "least important log lines written: debug, info, warn, error")
    .action(
      action(
        async (
          opts: { host?: string; port?: string; allowRemote?: boolean; json?: boolean; logLevel?: string },
          cmd: Command,
        ) => {
          const config = edgeConfig(cmd, { host: opts.host, port: opts.port, log_level: opts.logLevel });
          const log = (event: Record<string, unknown>) => {
            if (shouldLog(event.level, config.log_level))
              process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`);
          };
          const sync = createSyncHooks(config, { log, ...retryScale() });
          let stopPruning = () => {};
          let store: EdgeStore | undefined;
          const heavy = createVpsQueryClient({
            dataDir: config.data_dir,
            cacheTtlS: config.cache_ttl_s,
            dataVersion: () => store?.dataVersion() ?? "",
            tokens: () => sync.engine()?.session,
            online: () => sync.engine()?.isOnline() ?? false,
          });
          const daemon = await startEdgeDaemon({
            config,
            hooks: {
              ...sync,
              heavy,
              onStop: async () => {
                stopPruning();
                await sync.onStop?.();
                heavy.close();
              },
            },
            handleSignals: true,
            allowRemote: opts.allowRemote === true,
            indexMerge: { log },
          });
          store = daemon.store;
          stopPruning = every(config.prune_interval_s * 1000, () => {
            const started = performance.now();
            const pruned = daemon.store.pruneSynced(Date.now() - config.queue_retention_s * 1000);
            log({
              level: "debug",
              event: "queue_pruned",
              pruned,
              ms: Math.round(performance.now() - started),
            });
          });
          const listen = `${daemon.host.includes(":") ? `[${daemon.host}]` : daemon.host}:${daemon.port}`;
          if (daemon.remote)
            process.stderr.write(
              `dionysus: warning: the local API listens on ${listen}, reachable from other machines (--allow-remote); every request but /health needs the API token\n`,
            );
          const auth = sync.sync.auth();
          const info = {
            url: daemon.url,
            host: daemon.host,
            port: daemon.port,
            pid: process.pid,
            version: VERSION,
            data_dir: config.data_dir,
            device_id: daemon.store.deviceId,
            vps: sync.engine()?.session.vpsUrl() ?? null,
            auth,
            remote: daemon.remote,
            api_token_file: apiTokenPath(config.data_dir),
          };
          if (opts.json) {
            process.stdout.write(`${JSON.stringify(info)}\n`);
            return;
          }
          const lines = [
            daemon.remote
              ? `dionysus ${VERSION} edge agent listening on ${listen} (reachable from other machines; from this one: ${daemon.url})`
              : `dionysus ${VERSION} edge agent listening on ${daemon.url}`,
            `  data dir ${config.data_dir} (device ${info.device_id})`,
            `  API token in ${info.api_token_file} (send it as Authorization: Bearer <token>)`,
          ];
          if (auth === "none")
            lines.push(
              "  not logged in to a VPS: running offline, local-only (every write is queued for sync)",
              "  to sync, run: dionysus login https://your-vps.example (or --api-key KEY)",
            );
          else if (auth === "reauth_required")
            lines.push("  VPS login expired: run dionysus login to resume syncing (writes keep queueing)");
          else lines.push(`  syncing with ${info.vps}`);
          process.stdout.write(`${lines.join("\n")}\n`);
        },
      ),
    );
}

/**
 * Testing knob: DIONYSUS_DEBUG_SYNC_RETRY_SCALE (a number above 0) multiplies the sync engine's
 * retry backoff (10 s, 60 s, 300 s) and the realtime stream's reconnect delays (1 s doubling to
 * 30 s), so that fault tests need not wait them out. Unset, the schedule is the documented one.
 */
function retryScale(): { retryScale?: number } {
  const v = Number(process.env.DIONYSUS_DEBUG_SYNC_RETRY_SCALE);
  return Number.isFinite(v) && v > 0 ? { retryScale: v } : {};
}
