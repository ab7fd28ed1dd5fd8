/**
 * Structured logs: one JSON object per line. Callers pass fields, never secrets: request logs carry
 * method, route, path without query, status, timing and ids, never headers or bodies.
 */
export type LogEntry = Record<string, unknown>;
export type Logger = (entry: LogEntry) => void;

export const jsonLogger =
  (write: (line: string) => void = (l) => process.stdout.write(l)): Logger =>
  (entry) => {
    write(`${JSON.stringify({ time: new Date().toISOString(), level: "info", ...entry })}\n`);
  };
