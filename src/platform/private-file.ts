/**
 * Files that hold other people's data (backups, their partial copies) are readable by their owner
 * only from the moment they exist: created empty with mode 0600 before anything is written, so no
 * other local user can open one during the write and keep reading it after a later chmod.
 */
import { closeSync, openSync } from "node:fs";

/** Creates `path` empty, owner-only (0600); refuses a path that exists already (a file, or a link
 * planted there). Writers that truncate (SQLite's `VACUUM INTO`, `pg_dump --file`, Bun's file
 * writer) keep the mode. */
export function createPrivateFile(path: string): void {
  closeSync(openSync(path, "wx", 0o600));
}
