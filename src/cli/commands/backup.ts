/**
 * Backups. `dionysus backup --out FILE` copies the edge database online (beside a running daemon).
 * `dionysus vps backup --out FILE` and `dionysus vps restore FILE` dump and restore the VPS
 * database: pg_dump/pg_restore on PostgreSQL, the data-dir tarball on embedded PGlite (which
 * belongs to one process, so `vps serve` must be stopped for both there; on PostgreSQL a backup
 * runs online and a restore needs the server stopped). A restore starts a new epoch: devices
 * refetch and send their own writes again.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { VpsConfig } from "../../core/config.ts";
import { DionysusError } from "../../core/errors.ts";
import { backupEdge } from "../../edge/backup.ts";
import { edgeConfig } from "../edge-command.ts";
import { action, printJson } from "../output.ts";
import { confirm } from "../prompt.ts";
import { configFrom, type DbFlags, withDbOptions } from "./vps.ts";

export function registerBackup(program: Command): void {
  program
    .command("backup")
    .description("copy the edge database to FILE (online: works while the daemon runs)")
    .requiredOption("-o, --out <file>", "the backup file to write (must not exist)")
    .option("--json", "print {path, bytes, memories} as JSON")
    .action(
      action(async (opts: { out: string; json?: boolean }, cmd: Command) => {
        const b = backupEdge(edgeConfig(cmd).data_dir, opts.out);
        if (opts.json) return printJson(b);
        process.stdout.write(`backed up ${b.memories} memories to ${b.path} (${b.bytes} bytes)\n`);
      }),
    );
}

async function modules() {
  const [backup, database, lock, server] = await Promise.all([
    import("../../vps/admin/backup.ts"),
    import("../../vps/db/database.ts"),
    import("../../vps/db/pglite-lock.ts"),
    import("../../vps/server.ts"),
  ]);
  return { ...backup, ...database, ...lock, ...server };
}

/** Holds the embedded data dir for this process, or refuses while a server (or anything) has it. */
async function holdDataDir(config: VpsConfig): Promise<() => void> {
  const m = await modules();
  const running = m.readServerFile(config.data_dir);
  if (running)
    throw new DionysusError(
      "busy",
      `a vps serve (pid ${running.pid}) is running on ${config.data_dir}; stop it first`,
    );
  if (config.database_url) return () => {};
  mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
  const lock = m.tryLockPglite(config.data_dir);
  if (!("release" in lock))
    throw new DionysusError("busy", `${m.describeHolder(lock.holder)} has ${config.data_dir} open`);
  return lock.release;
}

export function registerVpsBackup(vps: Command): void {
  withDbOptions(
    vps
      .command("backup")
      .description("dump the VPS database to FILE (pg_dump on PostgreSQL, the data dir on PGlite)")
      .requiredOption("-o, --out <file>", "the backup file to write")
      .option("--json", "print the backup's header as JSON"),
  ).action(
    action(async (flags: DbFlags & { out: string }) => {
      const config = configFrom(flags);
      const m = await modules();
      // PostgreSQL is dumped online; PGlite belongs to one process.
      const release = config.database_url ? () => {} : await holdDataDir(config);
      try {
        const database = await m.createVpsDatabase(config, { poolSize: 1 });
        try {
          const header = await m.backupVps(database, config.database_url, flags.out);
          if (flags.json) printJson(header);
          else
            process.stdout.write(
              `backed up the ${header.kind} database (epoch ${header.epoch}) to ${flags.out}\n`,
            );
        } finally {
          await database.close();
        }
      } finally {
        release();
      }
    }),
  );

  withDbOptions(
    vps
      .command("restore <file>")
      .description("replace the VPS database with a backup (stop the server first); devices then refetch")
      .option("--yes", "do not ask for confirmation")
      .option("--json", "print {restored, kind, epoch} as JSON"),
  ).action(
    action(async (file: string, flags: DbFlags & { yes?: boolean }) => {
      const config = configFrom(flags);
      const m = await modules();
      const { header, offset } = m.readBackupHeader(file);
      const kind = config.database_url ? "postgres" : "pglite";
      if (header.kind !== kind)
        throw new DionysusError(
          "invalid_input",
          `${file} is a backup of a ${header.kind} database; this VPS uses ${kind}`,
        );
      await confirm(
        `This replaces every row of the VPS database with the backup of ${header.created_at}.`,
        flags.yes,
      );
      const release = await holdDataDir(config);
      try {
        let aside: string | undefined;
        if (config.database_url) await m.restorePostgres(file, offset, config.database_url);
        else {
          // The current data dir is kept aside until the restored one has opened and migrated.
          const pgdata = join(config.data_dir, "pgdata");
          if (existsSync(pgdata)) {
            aside = `${pgdata}.before-restore-${Date.now()}`;
            renameSync(pgdata, aside);
          }
        }
        let epoch: string;
        try {
          const database = await m.createVpsDatabase(config, {
            poolSize: 1,
            ...(config.database_url ? {} : { loadDataDir: m.backupPayload(file, offset) }),
          });
          try {
            epoch = await m.startNewEpoch(database);
          } finally {
            await database.close();
          }
        } catch (err) {
          if (aside) {
            rmSync(join(config.data_dir, "pgdata"), { recursive: true, force: true });
            renameSync(aside, join(config.data_dir, "pgdata"));
          }
          throw err;
        }
        if (aside) rmSync(aside, { recursive: true, force: true });
        if (flags.json) printJson({ restored: file, kind, epoch });
        else
          process.stdout.write(
            `restored ${file} (${header.kind}, taken ${header.created_at}); new epoch ${epoch}: devices will refetch and resend their writes\n`,
          );
      } finally {
        release();
      }
    }),
  );
}
