/**
 * Browser sessions of the VPS status page: a random secret in an HttpOnly, SameSite=Strict cookie,
 * kept here only as its SHA-256 (a memory dump never shows a usable cookie) for `ttlMs`. They live
 * in this process: a restart, or another instance behind a load balancer without sticky sessions,
 * asks the user to sign in again. The page only reads and revokes, so that is a fair price for
 * keeping browser sessions out of the database and away from the API's tokens.
 */
import { createHash, randomBytes } from "node:crypto";

export const VPS_SESSION_COOKIE = "dionysus_vps_session";
const MAX_SESSIONS = 10_000;

export interface WebSession {
  userId: string;
  userName: string;
  expiresAt: number;
}

const digest = (secret: string) => createHash("sha256").update(secret).digest("base64url");

export class WebSessions {
  private readonly byDigest = new Map<string, WebSession>();

  constructor(
    private readonly ttlMs = 12 * 3600_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a session; returns the cookie's secret. */
  create(userId: string, userName: string): string {
    this.sweep();
    const secret = randomBytes(32).toString("base64url");
    this.byDigest.set(digest(secret), { userId, userName, expiresAt: this.now() + this.ttlMs });
    return secret;
  }

  get(secret: string | undefined): WebSession | undefined {
    if (!secret || secret.length > 100) return undefined;
    const s = this.byDigest.get(digest(secret));
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.byDigest.delete(digest(secret));
      return undefined;
    }
    return s;
  }

  end(secret: string | undefined): void {
    if (secret) this.byDigest.delete(digest(secret));
  }

  /** `Set-Cookie` for a new session (`Secure` when the page is served over https). */
  cookie(secret: string, secure: boolean): string {
    return `${VPS_SESSION_COOKIE}=${secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${Math.floor(this.ttlMs / 1000)}${secure ? "; Secure" : ""}`;
  }

  static clearCookie(secure: boolean): string {
    return `${VPS_SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? "; Secure" : ""}`;
  }

  private sweep(): void {
    const t = this.now();
    for (const [k, s] of this.byDigest) if (s.expiresAt <= t) this.byDigest.delete(k);
    // A flood of sign-ins cannot grow the map without bound: the oldest sessions go first.
    while (this.byDigest.size >= MAX_SESSIONS) {
      const first = this.byDigest.keys().next().value;
      if (first === undefined) break;
      this.byDigest.delete(first);
    }
  }
}
