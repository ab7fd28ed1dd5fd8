/**
 * The embedded (PGlite) data dir on disk: owner-only file modes, and the free space it needs.
 *
 * PGlite creates its dirs 0777 less the umask and chmods each file it creates to 0666, so the
 * database (argon2 hashes in the WAL, `pg_control`) was readable and writable by every local user.
 * While a PGlite is open the process umask is 077, so every dir it makes is 0700 and nobody else
 * can reach the files inside; the data dir is walked at open (an existing one is put right, and
 * the count logged), after PGlite has created its files and at close, so that files are 0600.
 *
 * A full disk makes PGlite fail in ways that do not say so (an `ErrnoError` object, "PGlite failed
 * to initialize properly", or a PANIC after which the instance never answers again), so the free
 * space is checked before opening and whenever a write fails.
 */
import { chmodSync, lstatSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { DionysusError } from "../../core/errors.ts";
import { freeBytes } from "../../platform/file-size.ts";

export { freeBytes };

const POSIX = process.platform !== "win32";

/**
 * Makes `root` and everything below it owner-only: dirs 0700, files 0600 (symlinks are left
 * alone). Returns how many modes it changed.
 */
export function makeOwnerOnly(root: string): number {
  if (!POSIX) return 0;
  let fixed = 0;
  const fix = (path: string, isDir: boolean) => {
    let mode: number;
    try {
      mode = lstatSync(path).mode & 0o777;
    } catch {
      return;
    }
    const want = isDir ? mode & 0o700 : mode & 0o600;
    // A dir must stay searchable and a file readable and writable by its owner.
    const target = isDir ? want | 0o700 : want | 0o600;
    if (mode === target) return;
    try {
      chmodSync(path, target);
      fixed++;
    } catch {
      // not ours to change (another owner): opening will say what is wrong if it matters
    }
  };
  const walk = (dir: string) => {
    fix(dir, true);
    let entries: import("node:fs").Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (e.isFile()) fix(path, false);
    }
  };
  walk(root);
  return fixed;
}

let umaskHolders = 0;
let savedUmask = 0;

/**
 * Sets the process umask to 077 until the returned function is called (nested holders share it;
 * the last one restores the previous umask).
 */
export function holdPrivateUmask(): () => void {
  if (!POSIX) return () => {};
  if (umaskHolders++ === 0) savedUmask = process.umask(0o077);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    if (--umaskHolders === 0) process.umask(savedUmask);
  };
}

const MiB = 1024 * 1024;

/** Free space a new embedded database needs (initdb writes ~40 MiB, one WAL segment is 16 MiB). */
export const MIN_FREE_NEW = 64 * MiB;
/** Free space an existing embedded database needs to start: two WAL segments. */
export const MIN_FREE_EXISTING = 32 * MiB;
/** Below this much free space a failed write is taken to be the disk being full. */
const FULL_BELOW = 16 * MiB;

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** The error every disk-full condition of the embedded database becomes (503 over HTTP). */
export function diskFullError(dir: string, cause?: unknown): DionysusError {
  const free = freeBytes(dir);
  return new DionysusError(
    "unavailable",
    `the disk holding ${dir} is full${free === undefined ? "" : ` (${mib(free)} free)`}; free some space`,
    { cause },
  );
}

/** Refuses to open an embedded database on a disk with less than `minBytes` free. */
export function checkFreeSpace(dir: string, minBytes: number): void {
  const free = freeBytes(dir);
  if (free === undefined || free >= minBytes) return;
  throw new DionysusError(
    "unavailable",
    `the disk holding ${dir} is full (${mib(free)} free, the embedded database needs at least ${mib(minBytes)}); free some space and start again`,
  );
}

/** Whether `err` says the disk is full (Postgres 53100, a "No space left" message, ENOSPC). */
export function saysDiskFull(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; errno?: unknown; name?: unknown; message?: unknown };
  if (e.code === "53100" || e.code === "ENOSPC") return true;
  // Emscripten's file system (PGlite's) throws ErrnoError objects; its ENOSPC is 51.
  if (e.name === "ErrnoError" && e.errno === 51) return true;
  return typeof e.message === "string" && /no space left on device|could not extend file/i.test(e.message);
}

/** Whether a failed write on `dir` is down to a full disk: the error says so, or the space is gone. */
export function isDiskFull(dir: string, err: unknown): boolean {
  if (saysDiskFull(err)) return true;
  const free = freeBytes(dir);
  return free !== undefined && free < FULL_BELOW;
}
