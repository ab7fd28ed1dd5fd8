/**
 * How a browser gets into the edge daemon's pages: the session cookie `dionysus_session`, handed
 * out only to someone who proves they can read the API token (`<data_dir>/api-token`, 0600):
 *
 * - `dionysus open` asks `POST /v1/session/ticket` (with the bearer token) for a ticket and opens
 *   the browser at `/session?ticket=…&next=/`, which trades it for the cookie. A ticket lives
 *   {@link TICKET_TTL_MS}, works once, and is kept only as its SHA-256 in this process's memory.
 * - The sign-in page (`GET /` without a session) takes the token pasted into a form
 *   (`POST /session`); wrong tokens are budgeted ({@link FAILURE_BUDGET} per
 *   {@link FAILURE_WINDOW_MS}).
 *
 * The cookie's value is a secret of this process (not the token, so a leaked cookie never reveals
 * the token, and it dies with the daemon). Neither the ticket nor the cookie is ever logged.
 */
import { createHash, randomBytes } from "node:crypto";
import { secretMatcher } from "../api-token.ts";

/** How long a ticket may wait for its browser. */
export const TICKET_TTL_MS = 60_000;
/** Tickets waiting at once; beyond it the oldest is dropped (a flood cannot grow the map). */
const MAX_TICKETS = 64;
/** Wrong tokens in the sign-in form allowed per window before the form answers 429. */
export const FAILURE_BUDGET = 10;
export const FAILURE_WINDOW_MS = 60_000;

export interface BrowserSessions {
  /** The cookie's value (32 random bytes, base64url). */
  readonly secret: string;
  /** Whether a presented cookie value is this daemon's session (constant time). */
  isSession(presented: string): boolean;
  /** A new single-use ticket and when it expires. */
  issueTicket(): { ticket: string; expires_at: string };
  /** Spends a ticket: true once for a ticket issued less than {@link TICKET_TTL_MS} ago. */
  redeemTicket(ticket: string): boolean;
  /** Seconds until the sign-in form takes tokens again, or 0 when it does now. */
  blockedForS(): number;
  /** Records a wrong token from the sign-in form. */
  failed(): void;
}

const digest = (s: string) => createHash("sha256").update(s).digest("base64url");

export function createBrowserSessions(now: () => number = Date.now): BrowserSessions {
  const secret = randomBytes(32).toString("base64url");
  const isSession = secretMatcher(secret);
  // SHA-256 of the ticket → when it expires. Looked up by hash: the lookup's timing says nothing
  // about the ticket, and a dump of the process holds no usable ticket.
  const tickets = new Map<string, number>();
  let failures: number[] = [];

  const prune = () => {
    const t = now();
    for (const [k, expires] of tickets) if (expires <= t) tickets.delete(k);
  };

  return {
    secret,
    isSession,
    issueTicket() {
      prune();
      while (tickets.size >= MAX_TICKETS) tickets.delete(tickets.keys().next().value as string);
      const ticket = randomBytes(32).toString("base64url");
      const expires = now() + TICKET_TTL_MS;
      tickets.set(digest(ticket), expires);
      return { ticket, expires_at: new Date(expires).toISOString() };
    },
    redeemTicket(ticket) {
      const key = digest(ticket);
      const expires = tickets.get(key);
      if (expires === undefined) return false;
      tickets.delete(key);
      return now() < expires;
    },
    blockedForS() {
      const t = now();
      failures = failures.filter((at) => at > t - FAILURE_WINDOW_MS);
      if (failures.length < FAILURE_BUDGET) return 0;
      return Math.max(1, Math.ceil((failures[0]! + FAILURE_WINDOW_MS - t) / 1000));
    },
    failed() {
      failures.push(now());
    },
  };
}
