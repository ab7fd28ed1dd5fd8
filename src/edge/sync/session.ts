/**
 * The sync engine's session with the VPS: this device's credentials (`<data dir>/credentials.json`,
 * re-read when the file changes, so a `dionysus login` elsewhere is picked up), the VPS client for
 * them, and the access token, refreshed one refresh at a time. The VPS query client ("heavy"
 * queries, see docs/architecture.md) borrows it as its {@link TokenSource}.
 */
import { DionysusError } from "../../core/errors.ts";
import type { AuthState } from "../../core/protocol/edge-api.ts";
import type { TokenSource } from "../vps-http.ts";
import { type Credentials, credentialsMtime, readCredentials, writeCredentials } from "./credentials.ts";
import { VpsClient } from "./vps-client.ts";

export type { AuthState } from "../../core/protocol/edge-api.ts";

/** An access token this close to its expiry is refreshed before use. */
const REFRESH_MARGIN_MS = 120_000;

export interface SyncSessionOptions {
  dataDir: string;
  /** This device's wall clock (ms), for the VPS client's clock-offset measure. */
  now?: () => number;
  /** Called whenever credentials that are usable (not `reauth_required`) are (re)read from disk. */
  onCredentials?: () => void;
  log?: (event: Record<string, unknown>) => void;
}

export class SyncSession implements TokenSource {
  private creds: Credentials | undefined;
  private credsMtime = -1;
  private vps: VpsClient | undefined;
  private refreshing: Promise<boolean> | undefined;

  constructor(private readonly opts: SyncSessionOptions) {}

  authState(): AuthState {
    this.load();
    if (!this.creds) return "none";
    return this.creds.reauth_required ? "reauth_required" : "ok";
  }

  /** The VPS URL of the credentials last read (null: not logged in). */
  vpsUrl(): string | null {
    return this.creds?.vps_url ?? null;
  }

  /** The current credentials; `unauthorized` when not logged in. */
  credentials(): Credentials {
    this.load();
    if (!this.creds) throw new DionysusError("unauthorized", "not logged in: run dionysus login URL");
    return this.creds;
  }

  /** The VPS client for the current credentials; `unauthorized` when not logged in. */
  client(): VpsClient {
    this.credentials();
    return this.vps!;
  }

  /** Writes new credentials (0600, atomically) and uses them from now on. */
  save(creds: Credentials): void {
    writeCredentials(this.opts.dataDir, creds);
    this.creds = creds;
    this.credsMtime = credentialsMtime(this.opts.dataDir);
  }

  async accessToken(): Promise<string> {
    const creds = this.credentials();
    if (creds.access_expires_at - Date.now() < REFRESH_MARGIN_MS && !(await this.refresh())) {
      throw new DionysusError("unauthorized", "re-authentication needed: run dionysus login");
    }
    return this.credentials().access_token;
  }

  /** Refreshes the tokens once at a time (refresh tokens rotate: two refreshes at once would
   * look like token theft to the VPS and revoke the family). */
  refresh(): Promise<boolean> {
    this.refreshing ??= this.doRefresh().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async doRefresh(): Promise<boolean> {
    const creds = this.credentials();
    const r = await this.client().refreshToken(creds.refresh_token);
    if (r.ok) {
      this.save({
        ...creds,
        access_token: r.token.access_token,
        refresh_token: r.token.refresh_token,
        access_expires_at: Date.now() + r.token.expires_in * 1000,
        reauth_required: false,
      });
      return true;
    }
    this.save({ ...creds, reauth_required: true });
    this.opts.log?.({ event: "auth_refresh_refused", error: r.error.error });
    return false;
  }

  /** Re-reads the credentials file when it changed (one stat call otherwise). */
  private load(): void {
    const mtime = credentialsMtime(this.opts.dataDir);
    if (mtime === this.credsMtime) return;
    this.credsMtime = mtime;
    this.creds = mtime === 0 ? undefined : readCredentials(this.opts.dataDir);
    if (this.creds && this.vps?.baseUrl !== this.creds.vps_url)
      this.vps = new VpsClient({
        baseUrl: this.creds.vps_url,
        ...(this.opts.now ? { now: this.opts.now } : {}),
      });
    if (!this.creds) this.vps = undefined;
    if (this.creds && !this.creds.reauth_required) this.opts.onCredentials?.();
  }
}
