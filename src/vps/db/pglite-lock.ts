/**
 * One process at a time may open an embedded (PGlite) data dir: two would corrupt it. The lock is
 * a file created exclusively with the holder's pid; a lock whose process is gone is stale and taken.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const pgliteLockPath = (dataDir: string) => join(dataDir, "pglite.lock");

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the lock; returns the release function, or the holder's pid when another process has it. */
export function tryLockPglite(dataDir: string): { release: () => void } | { holder: number } {
  const path = pgliteLockPath(dataDir);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, String(process.pid), { flag: "wx", mode: 0o600 });
      return {
        release: () => {
          try {
            if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
          } catch {}
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      let holder = Number.NaN;
      try {
        holder = Number(readFileSync(path, "utf8").trim());
      } catch {}
      if (Number.isInteger(holder) && holder > 0 && pidAlive(holder) && holder !== process.pid)
        return { holder };
      rmSync(path, { force: true });
    }
  }
  return { holder: -1 };
}
