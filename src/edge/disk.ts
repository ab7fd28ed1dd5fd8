/**
 * A full disk, told apart from every other failure: it is not corruption (the files are intact),
 * it must never lead to advice that throws data away, and reads still work.
 */
import { DionysusError } from "../core/errors.ts";
import { freeBytes } from "../platform/file-size.ts";

/** Below this many free bytes, an I/O error from SQLite is taken to be the disk being full: it
 * reports a shared-memory file (`-shm`, 32 KiB) it cannot grow as an I/O error, not as "full". */
const LOW_SPACE_BYTES = 1024 * 1024;

/** Whether `err` (a file-system or SQLite failure about files in `dir`) means the disk is full. */
export function isDiskFull(err: unknown, dir: string): boolean {
  if (err instanceof DionysusError) return err.details?.reason === "disk_full";
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  if (code === "ENOSPC" || code === "EDQUOT" || code.startsWith("SQLITE_FULL")) return true;
  if (code.startsWith("SQLITE_IOERR")) {
    const free = freeBytes(dir);
    return free !== undefined && free < LOW_SPACE_BYTES;
  }
  return false;
}

/**
 * The error for a full disk (`unavailable`, details `reason: "disk_full"`): `doing` says what
 * could not be done. It says what is intact and never suggests moving or deleting anything.
 */
export function diskFullError(dir: string, doing: string, cause?: unknown): DionysusError {
  return new DionysusError(
    "unavailable",
    `the disk holding ${dir} is full: ${doing}. Nothing was lost; free some space and try again`,
    { details: { reason: "disk_full", path: dir }, cause },
  );
}
