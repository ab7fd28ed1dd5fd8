/**
 * One process at a time may open an embedded (PGlite) data dir: two would corrupt it. The guard is
 * an OS lock (`flock`) on `<data_dir>/pglite.lock`, which the kernel drops when the holder exits,
 * however it exits: a leftover file, or a pid in it that now belongs to another process, never
 * blocks a start. The holder writes its pid into the file, only to name it in the refusal.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pidAlive, tryLockFile } from "../../platform/file-lock.ts";

export const pgliteLockPath = (dataDir: string) => join(dataDir, "pglite.lock");

/**
 * Takes the lock; returns the release function, or, when another process has it, that process's
 * pid if the lock file names a live one.
 */
export function tryLockPglite(dataDir: string): { release: () => void } | { holder: number | undefined } {
  const path = pgliteLockPath(dataDir);
  const lock = tryLockFile(path);
  if (!lock) {
    let holder: number | undefined;
    try {
      const pid = Number(readFileSync(path, "utf8").trim());
      if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) holder = pid;
    } catch {}
    return { holder };
  }
  try {
    writeFileSync(path, `${process.pid}\n`, { mode: 0o600 });
  } catch {
    // informational only (a full disk must not keep us from reporting the real problem)
  }
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      try {
        writeFileSync(path, "");
      } catch {}
      lock.release();
    },
  };
}

/** "another dionysus process (pid N)" or, when the holder is unknown, "another dionysus process". */
export const describeHolder = (holder: number | undefined) =>
  holder === undefined ? "another dionysus process" : `another dionysus process (pid ${holder})`;
