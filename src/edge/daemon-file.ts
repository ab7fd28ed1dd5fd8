/**
 * `<data_dir>/daemon.json`: how the CLI finds a running daemon. Owner-only permissions; written
 * once the daemon listens, removed on clean stop. A second daemon on the same data dir is refused
 * by the OS lock on `<data_dir>/daemon.lock` (see daemon.ts), not by this file.
 */
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

export { pidAlive } from "../platform/file-lock.ts";

export const DAEMON_FILE = "daemon.json";
/** The file the running daemon holds an OS lock on (it contains that daemon's pid). */
const LOCK_FILE = "daemon.lock";
/** The edge database inside the data dir. */
export const DB_FILE = "edge.db";

export const DaemonInfo = z.object({
  pid: z.number().int().positive(),
  host: z.string(),
  /** null while the daemon is still starting. */
  port: z.number().int().nullable(),
  started_at: z.string(),
  version: z.string(),
});
export type DaemonInfo = z.infer<typeof DaemonInfo>;

export const daemonFilePath = (dataDir: string) => join(dataDir, DAEMON_FILE);
export const dbPath = (dataDir: string) => join(dataDir, DB_FILE);
export const lockFilePath = (dataDir: string) => join(dataDir, LOCK_FILE);

export function readDaemonInfo(dataDir: string): DaemonInfo | undefined {
  try {
    const r = DaemonInfo.safeParse(JSON.parse(readFileSync(daemonFilePath(dataDir), "utf8")));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Creates the file only if it does not exist (the start race between two daemons where the OS
 * lock is not available). A file that could not be written whole (a full disk) is removed.
 */
export function createDaemonInfoExclusive(dataDir: string, info: DaemonInfo): boolean {
  let fd: number;
  try {
    fd = openSync(daemonFilePath(dataDir), "wx", 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
  try {
    writeSync(fd, `${JSON.stringify(info, null, 2)}\n`);
  } catch (err) {
    closeSync(fd);
    rmSync(daemonFilePath(dataDir), { force: true });
    throw err;
  }
  closeSync(fd);
  return true;
}

/** Replaces the file atomically, so a reader never sees half of it (nor an empty one when the
 * disk is full: the temporary file is removed and the old one left as it was). */
export function writeDaemonInfo(dataDir: string, info: DaemonInfo): void {
  const tmp = `${daemonFilePath(dataDir)}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, daemonFilePath(dataDir));
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** The pid the lock holder wrote into `daemon.lock`, if readable. */
export function readLockPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(lockFilePath(dataDir), "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function removeDaemonInfo(dataDir: string, pid: number): void {
  if (readDaemonInfo(dataDir)?.pid === pid) rmSync(daemonFilePath(dataDir), { force: true });
}

/** Removes the file when `matches` holds for what it contains now (undefined: unreadable). */
export function removeDaemonInfoIf(
  dataDir: string,
  matches: (current: DaemonInfo | undefined) => boolean,
): void {
  if (matches(readDaemonInfo(dataDir))) rmSync(daemonFilePath(dataDir), { force: true });
}

/** The URL a client on this machine uses to reach a daemon listening on `host`. */
export function daemonUrl(host: string, port: number): string {
  const h =
    host === "0.0.0.0" || host === "" ? "127.0.0.1" : host === "::" || host === "[::]" ? "[::1]" : host;
  const bracketed = h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
  return `http://${bracketed}:${port}`;
}
