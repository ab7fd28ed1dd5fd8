/**
 * Failed password sign-ins, one budget per server for both places a password is typed: the
 * device approval page (`POST /device`) and the status page (`POST /signin`). A guess on one
 * counts on the other, per name and address pair, per address, and per name from every address,
 * so two forms never double an attacker's guesses. On PostgreSQL the counts live in
 * `rate_limits`, shared by every instance; embedded PGlite counts in this process's memory.
 */
import type { VpsDatabase } from "../db/database.ts";
import { FailureBudget, type FailureRule } from "./rate-limit.ts";
import { RateCounterStore, SharedFailureBudget } from "./shared-rate-limit.ts";

/** The window failed sign-ins are counted in. */
const SIGN_IN_WINDOW_MS = 15 * 60_000;

export interface SignInLimits {
  /** Failed sign-ins allowed per user name from one address per 15 min (5). */
  perPair?: number;
  /** Failed sign-ins allowed per 15 min from one address, whatever the user name (20). */
  perAddress?: number;
  /** Failed sign-ins allowed per 15 min for one user name, from every address together (50). */
  perUser?: number;
}

export type SignInReservation =
  | { ok: true; refund: () => void }
  | { ok: false; rule: FailureRule; resetS: number };

export interface SignInBudget {
  /** Reserves one failure for `user` from `ip` before the password check; refund it when the
   * password was right. */
  reserve(user: string, ip: string): Promise<SignInReservation>;
}

export function signInBudget(database: VpsDatabase, limits: SignInLimits = {}): SignInBudget {
  const failures =
    database.kind === "postgres"
      ? new SharedFailureBudget(
          new RateCounterStore(database.db, SIGN_IN_WINDOW_MS, "sign-in"),
          SIGN_IN_WINDOW_MS,
        )
      : new FailureBudget(SIGN_IN_WINDOW_MS);
  return {
    reserve: async (user, ip) =>
      failures.reserve([
        { key: `pair:${ip}\u0000${user}`, limit: limits.perPair ?? 5 },
        { key: `ip:${ip}`, limit: limits.perAddress ?? 20 },
        { key: `user:${user}`, limit: limits.perUser ?? 50 },
      ]),
  };
}
