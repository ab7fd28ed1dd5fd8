/**
 * Structured logs: one JSON object per line. Callers pass fields, never secrets: request logs carry
 * method, route, path without query, status, timing and ids, never headers or bodies.
 */
import { type LogLevel, shouldLog } from "../core/log-level.ts";

export type LogEntry = Record<string, unknown>;
export type Logger = (entry: LogEntry) => void;

/** Writes entries at `minLevel` or above (an entry without a level is `info`). */
export const jsonLogger =
  (write: (line: string) => void = (l) => process.stdout.write(l), minLevel: LogLevel = "info"): Logger =>
  (entry) => {
    if (!shouldLog(entry.level, minLevel)) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: "info", ...entry })}\n`);
  };
