/** Log levels of both servers (`--log-level`, `DIONYSUS_LOG_LEVEL`): an entry is written when its
 * level is at least the configured one; an entry without a level is `info`. */
import { z } from "zod";

export const LogLevel = z.enum(["debug", "info", "warn", "error"]);
export type LogLevel = z.infer<typeof LogLevel>;

const RANK: Record<string, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export function shouldLog(entryLevel: unknown, min: LogLevel): boolean {
  const rank = typeof entryLevel === "string" ? (RANK[entryLevel] ?? 1) : 1;
  return rank >= RANK[min]!;
}
