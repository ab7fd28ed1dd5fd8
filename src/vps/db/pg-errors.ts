/**
 * What a PostgreSQL failure means to a client. A query that fails because the database server
 * is out of disk, memory or connections, is shutting down, or cannot be reached is not a bug of
 * the request: it is answered 503 with a plain reason (a client retries later and keeps its
 * writes), instead of a 500 "internal error" that tells the user nothing. SQLSTATE classes from
 * https://www.postgresql.org/docs/current/errcodes-appendix.html.
 */
import { DionysusError, isDionysusError } from "../../core/errors.ts";

/** The SQLSTATE (or Node's socket error code) of a driver error, if it has one. */
export function pgCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

/** Socket errors of a connection to the database that dropped or never opened. */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** Why the database could not do its part, or undefined when `err` is no such failure. */
export function databaseUnavailableReason(err: unknown): string | undefined {
  const code = pgCode(err);
  if (code === undefined) return undefined;
  if (code === "53100")
    return "the database server's disk is full; nothing was stored, try again once space is freed";
  if (code === "53200") return "the database server is out of memory; try again later";
  if (code === "53300") return "the database server has no free connection; try again later";
  if (code === "53400") return "the database server hit a configured limit; try again later";
  if (code === "57P01" || code === "57P02") return "the database server is shutting down; try again shortly";
  if (code === "57P03") return "the database server is starting up or in recovery; try again shortly";
  if (code.startsWith("08") || CONNECTION_CODES.has(code))
    return "the database server cannot be reached; try again later";
  return undefined;
}

/** `err` as the 503 it should be answered with, when it is a database outage (see above). */
export function asDatabaseUnavailable(err: unknown): unknown {
  if (isDionysusError(err)) return err;
  const reason = databaseUnavailableReason(err);
  return reason === undefined ? err : new DionysusError("unavailable", reason, { cause: err });
}
