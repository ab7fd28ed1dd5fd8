/** How much disk a SQLite database takes, and how much the disk has left. */
import { statfsSync, statSync } from "node:fs";

/** Bytes of the database file at `path` plus its write-ahead log (`<path>-wal`); a file that is
 * missing (no WAL right now, no database yet) counts 0. */
export function sqliteFileBytes(path: string): number {
  let total = 0;
  for (const p of [path, `${path}-wal`]) {
    try {
      total += statSync(p).size;
    } catch {
      // missing
    }
  }
  return total;
}

/** Free bytes for an unprivileged process on the file system holding `path`, if known. */
export function freeBytes(path: string): number | undefined {
  try {
    const s = statfsSync(path);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}
