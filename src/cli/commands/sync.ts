import type { Command } from "commander";
import { withEdge } from "../edge-command.ts";
import { action, printJson } from "../output.ts";
import { formatSyncRun, formatSyncStatus, progressPrinter } from "../sync-format.ts";

export function registerSync(program: Command): void {
  const sync = program
    .command("sync")
    .description("run one full sync cycle with the VPS now (push queued writes, pull changes)")
    .option("--json", "print the result as JSON")
    .action(
      action(async (opts: { json?: boolean }, cmd: Command) => {
        const progress = progressPrinter();
        const run = await withEdge(cmd, (c) => c.sync(opts.json ? undefined : progress)).finally(() =>
          progress.done(),
        );
        if (opts.json) return printJson(run);
        process.stdout.write(`${formatSyncRun(run)}\n${formatSyncStatus(run.status)}\n`);
      }),
    );
  sync
    .command("status")
    .description("show the sync queue per status, last success, next attempt, backoff and last error")
    .option("--json", "print the status as JSON")
    .action(
      action(async (opts: { json?: boolean }, cmd: Command) => {
        const status = await withEdge(cmd, (c) => c.syncStatus());
        if (opts.json) return printJson(status);
        process.stdout.write(`${formatSyncStatus(status)}\n`);
      }),
    );
}
