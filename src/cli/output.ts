/** CLI output and error handling: one clear line on failure, documented exit codes. */
import { DionysusError, exitCodeFor, isDionysusError } from "../core/errors.ts";

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Prints an error as one line on stderr and returns the exit code. */
export function reportError(err: unknown): number {
  if (isDionysusError(err)) {
    process.stderr.write(`dionysus: ${err.message}\n`);
    return exitCodeFor(err);
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`dionysus: unexpected error: ${message}\n`);
  return 1;
}

/** Wraps a command action: errors become one line and a non-zero exit. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (err) {
      process.exitCode = reportError(err);
    }
  };
}

export { DionysusError };
