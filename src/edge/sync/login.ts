/**
 * `dionysus login`: the OAuth 2.0 device authorization grant (RFC 8628) or an API key, then the
 * identity baseline. The device registers itself with its id, name and platform.
 */
import { DionysusError } from "../../core/errors.ts";
import type {
  DeviceAuthorizationResponse,
  IdentityResponse,
  OAuthError,
  TokenResponse,
} from "../../core/protocol/auth.ts";
import type { EdgeStore } from "../store/types.ts";
import { readCredentials, writeCredentials } from "./credentials.ts";
import { type TokenSource, VpsClient } from "./vps-client.ts";

export interface LoginOptions {
  vpsUrl: string;
  dataDir: string;
  store: EdgeStore;
  apiKey?: string;
  deviceName: string;
  platform: string;
  /** Sign in under a new device id (the VPS revoked the old one). */
  newDevice?: boolean;
  /** Shows the verification URL and user code to the user. */
  prompt?: (auth: DeviceAuthorizationResponse) => void;
  sleep?: (ms: number) => Promise<void>;
}

export interface LoginResult {
  user_id: string;
  device_id: string;
  identity: IdentityResponse;
}

const oauthFailure = (e: OAuthError): DionysusError => {
  const what: Record<string, string> = {
    access_denied: "the sign-in was denied on the VPS",
    expired_token: "the code expired before it was approved; run dionysus login again",
    invalid_grant: "the VPS refused the credentials",
    invalid_client: "the API key was refused",
  };
  // The VPS's own words say which case it is (a revoked device, a revoked key, ...).
  const why = e.error_description ? ` (${e.error_description})` : "";
  // A revoked device id stays revoked on the VPS; the way back is a new one.
  const hint =
    /revoked/i.test(e.error_description ?? "") && /device/i.test(e.error_description ?? "")
      ? "; to sign in again as a new device (memories and queued writes are kept), add --new-device"
      : "";
  return new DionysusError("unauthorized", `${what[e.error] ?? `login failed: ${e.error}`}${why}${hint}`);
};

export async function login(opts: LoginOptions): Promise<LoginResult> {
  const url = normaliseUrl(opts.vpsUrl);
  const previous = readCredentials(opts.dataDir);
  const client = new VpsClient({ baseUrl: url });
  // A copied or restored data dir signs in as a device of its own, never as the original.
  if (opts.newDevice || opts.store.splitPending()) opts.store.resetDeviceId();
  const info = { device_id: opts.store.deviceId, device_name: opts.deviceName, platform: opts.platform };
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

  let token: TokenResponse;
  if (opts.apiKey) {
    const r = await client.exchangeApiKey(opts.apiKey, info);
    if (!r.ok) throw oauthFailure(r.error);
    token = r.token;
  } else {
    const auth = await client.deviceAuthorization(info);
    opts.prompt?.(auth);
    let interval = Math.max(1, auth.interval) * 1000;
    const deadline = Date.now() + auth.expires_in * 1000;
    for (;;) {
      if (Date.now() > deadline) throw oauthFailure({ error: "expired_token" });
      await sleep(interval);
      const r = await client.pollDeviceCode(auth.device_code);
      if (r.ok) {
        token = r.token;
        break;
      }
      if (r.error.error === "authorization_pending") continue;
      if (r.error.error === "slow_down") {
        interval += 5000; // RFC 8628 §3.5
        continue;
      }
      throw oauthFailure(r.error);
    }
  }

  if (previous && previous.user_id !== token.user_id && opts.store.countMemories() > 0) {
    throw new DionysusError(
      "conflict",
      `this data dir holds memories of another account (${previous.user_id}); use another --data-dir`,
    );
  }
  const creds = {
    vps_url: url,
    user_id: token.user_id,
    device_id: token.device_id,
    access_token: token.access_token,
    refresh_token: token.refresh_token,
    access_expires_at: Date.now() + token.expires_in * 1000,
    reauth_required: false,
  };
  writeCredentials(opts.dataDir, creds);

  const tokens: TokenSource = { accessToken: async () => creds.access_token, refresh: async () => false };
  const identity = (await client.identity(tokens)).body;
  opts.store.applyIdentity(identity.memories);
  return { user_id: token.user_id, device_id: token.device_id, identity };
}

export function normaliseUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(/^https?:\/\//i.test(raw) ? raw : `https://${raw}`);
  } catch {
    throw new DionysusError("invalid_input", `not a URL: ${raw}`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new DionysusError("invalid_input", `not an http(s) URL: ${raw}`);
  return u.origin + u.pathname.replace(/\/+$/, "");
}
