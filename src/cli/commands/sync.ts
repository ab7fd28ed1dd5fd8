import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { openEdgeStore, withEdge } from "../edge-command.ts";
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
        if (opts.json || cmd.optsWithGlobals<{ json?: boolean }>().json) return printJson(status);
        process.stdout.write(`${formatSyncStatus(status)}\n`);
      }),
    );
  // Both work on the database directly (beside a daemon too), like import.
  sync
    .command("retry [ids...]")
    .description("queue failed items again (all of them when no mutation id is given)")
    .option("--json", "print {retried, superseded} as JSON")
    .action(
      action(async (ids: string[], opts: { json?: boolean }, cmd: Command) => {
        const numbers = ids.map(mutationId);
        const store = openEdgeStore(cmd);
        let r: ReturnType<typeof store.retryFailed>;
        try {
          r = store.retryFailed(numbers);
        } finally {
          store.close();
        }
        // `--json` may be taken by the parent `sync` command, which has one too.
        if (opts.json || cmd.optsWithGlobals<{ json?: boolean }>().json) return printJson(r);
        for (const x of r.retried) process.stdout.write(`queued again: mutation ${x.from} as ${x.to}\n`);
        for (const x of r.superseded)
          process.stdout.write(`dismissed: mutation ${x} (a later write of the memory replaced it)\n`);
        if (r.retried.length + r.superseded.length === 0) process.stdout.write("no failed items\n");
        else if (r.retried.length) process.stdout.write("they go out at the next sync (dionysus sync)\n");
      }),
    );
  sync
    .command("dismiss <id>")
    .description("remove a failed item from the queue (the memory stays as it is on this device)")
    .action(
      action(async (id: string, _opts: unknown, cmd: Command) => {
        const store = openEdgeStore(cmd);
        try {
          store.dismissFailed(mutationId(id));
        } finally {
          store.close();
        }
        process.stdout.write(`dismissed mutation ${id}\n`);
      }),
    );
}

/** A mutation id as `sync status` shows it. */
function mutationId(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(n) || n < 1)
    throw new DionysusError("invalid_input", `${s} is not a mutation id (see dionysus sync status)`);
  return n;
}
