/**
 * Advisory whole-file locks held by the operating system (`flock(2)` through bun:ffi). The kernel
 * drops the lock when the process exits, however it exits (kill -9, power loss), so a stale lock
 * can never block a start the way a PID file can (a PID is reused; an open file description is
 * not). Used for "one process per data dir" guards on both the edge and the VPS.
 *
 * `src/platform` holds runtime helpers that both `edge` and `vps` may import; it imports neither.
 */
import { dlopen, FFIType } from "bun:ffi";
import { closeSync, openSync } from "node:fs";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

type Flock = (fd: number, op: number) => number;

let flockFn: Flock | null | undefined;

function libcPath(): string {
  if (process.platform === "darwin") return "libc.dylib";
  return "libc.so.6";
}

/** The libc `flock`, or null where it cannot be loaded (Windows, a libc without it). */
function flock(): Flock | null {
  if (flockFn !== undefined) return flockFn;
  try {
    const lib = dlopen(libcPath(), { flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 } });
    flockFn = (fd, op) => lib.symbols.flock(fd, op) as number;
  } catch {
    flockFn = null;
  }
  return flockFn;
}

export interface FileLock {
  /** Releases the lock and closes the file. Safe to call twice. */
  release(): void;
}

/**
 * Takes an exclusive lock on `path` (created 0600 when missing) without waiting. Returns the lock,
 * or `undefined` when another process holds it. Where `flock` is not available the lock is
 * granted (the caller's other guards still apply) and `supported` says so.
 */
export function tryLockFile(path: string): (FileLock & { supported: boolean }) | undefined {
  const fd = openSync(path, "a", 0o600);
  const fn = flock();
  if (!fn) {
    return { supported: false, release: () => closeQuietly(fd) };
  }
  if (fn(fd, LOCK_EX | LOCK_NB) !== 0) {
    closeQuietly(fd);
    return undefined;
  }
  let held = true;
  return {
    supported: true,
    release: () => {
      if (!held) return;
      held = false;
      fn(fd, LOCK_UN);
      closeQuietly(fd);
    },
  };
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/** Whether a process with this pid exists (EPERM: it exists, owned by someone else). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
