/**
 * HTTP client of the VPS API, used by the sync engine and `dionysus login`. It parses every
 * answer with the protocol schemas of src/core, and maps failures into DionysusError codes the
 * engine acts on:
 * - `unavailable`: network error, timeout or 5xx — transient, back off (`details.retry_after_ms`);
 * - `rate_limited`: 429 — transient, `details.retry_after_ms` from Retry-After;
 * - `unauthorized`: 401 that a token refresh did not cure — re-authentication needed;
 * - `invalid_input` / others: the VPS refused the request itself.
 */
import type { z } from "zod";
import {
  API_KEY_GRANT,
  DEVICE_CODE_GRANT,
  DEVICE_SPLIT_GRANT,
  DeviceAuthorizationResponse,
  type DeviceInfo,
  IdentityResponse,
  OAuthError,
  TokenResponse,
} from "../../core/protocol/auth.ts";
import { ChangesEvent, type Mutation, PullResponse, PushResponse } from "../../core/protocol/sync.ts";
import { type FailureStyle, readSse, type TokenSource, VpsTransport } from "../vps-http.ts";

export type { TokenSource } from "../vps-http.ts";

const STYLE: FailureStyle = { prefix: "VPS answered" };

/** What the engine learns from each answer besides its body: the clock offset estimate. */
export interface Timed<T> {
  body: T;
  /** server_time - local midpoint of the request, in ms. */
  offsetMs: number | undefined;
}

export interface VpsClientOptions {
  baseUrl: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** This device's wall clock (ms), against which the VPS clock's offset is measured. */
  now?: () => number;
}

export type OAuthTokenResult = { ok: true; token: TokenResponse } | { ok: false; error: OAuthError };

export class VpsClient extends VpsTransport {
  constructor(private readonly opts: VpsClientOptions) {
    super(opts, STYLE);
  }

  // ---- auth (no bearer token) ----

  async deviceAuthorization(info: DeviceInfo): Promise<DeviceAuthorizationResponse> {
    const res = await this.send(() => this.http.post("v1/auth/device", { json: info }));
    return this.parse(res, DeviceAuthorizationResponse);
  }

  /** Exchanges a device code or API key; OAuth errors come back as values, not exceptions. */
  async token(body: Record<string, string | undefined>): Promise<OAuthTokenResult> {
    const res = await this.send(() => this.http.post("v1/auth/token", { json: body }));
    const json: unknown = await res.json().catch(() => undefined);
    if (res.ok) return { ok: true, token: TokenResponse.parse(json) };
    // A 429 or a 5xx is the VPS being busy, whatever shape its body has: try again later, never
    // take it for a refused sign-in.
    const err = OAuthError.safeParse(json);
    // (`slow_down` is the device-code poll's own answer to polling too fast: the caller waits.)
    const slowDown = err.success && err.data.error === "slow_down";
    if ((res.status === 429 && !slowDown) || res.status >= 500) throw this.failure(res, json);
    if (err.success) return { ok: false, error: err.data };
    throw this.failure(res, json);
  }

  pollDeviceCode(deviceCode: string): Promise<OAuthTokenResult> {
    return this.token({ grant_type: DEVICE_CODE_GRANT, device_code: deviceCode });
  }

  exchangeApiKey(apiKey: string, info: DeviceInfo): Promise<OAuthTokenResult> {
    return this.token({ grant_type: API_KEY_GRANT, api_key: apiKey, ...info });
  }

  /** Asks for a device identity of its own for a copied data dir (see DEVICE_SPLIT_GRANT). */
  splitDevice(refreshToken: string, info: DeviceInfo): Promise<OAuthTokenResult> {
    return this.token({ grant_type: DEVICE_SPLIT_GRANT, refresh_token: refreshToken, ...info });
  }

  refreshToken(refreshToken: string): Promise<OAuthTokenResult> {
    return this.token({ grant_type: "refresh_token", refresh_token: refreshToken });
  }

  // ---- authenticated ----

  async identity(tokens: TokenSource): Promise<Timed<IdentityResponse>> {
    return this.timed(tokens, (h) => this.http.get("v1/identity", { headers: h }), IdentityResponse);
  }

  async push(tokens: TokenSource, mutations: Mutation[]): Promise<Timed<PushResponse>> {
    return this.timed(
      tokens,
      (h) => this.http.post("v1/sync/push", { headers: h, json: { mutations } }),
      PushResponse,
    );
  }

  async pull(tokens: TokenSource, since: string | undefined, limit: number): Promise<Timed<PullResponse>> {
    const searchParams: Record<string, string> = { limit: String(limit) };
    if (since) searchParams.since = since;
    return this.timed(
      tokens,
      (h) => this.http.get("v1/sync/pull", { headers: h, searchParams }),
      PullResponse,
    );
  }

  /**
   * Opens `GET /v1/events` and yields each `changes` event until the stream ends or `signal`
   * aborts. Throws like the other calls when the stream cannot be opened, and when it stays
   * silent (not even a heartbeat) for `idleMs`.
   */
  async *events(
    tokens: TokenSource,
    lastEventId: string | undefined,
    signal: AbortSignal,
    onOpen?: () => void,
    idleMs?: number,
  ): AsyncGenerator<ChangesEvent> {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (lastEventId) headers["last-event-id"] = lastEventId;
    const res = await this.authed(tokens, (h) =>
      this.http.get("v1/events", { headers: { ...headers, ...h }, signal, timeout: false }),
    );
    if (!res.ok || !res.body) throw this.failure(res, await res.json().catch(() => undefined));
    onOpen?.();
    for await (const { event, data } of readSse(res.body, {
      cancel: false,
      ...(idleMs === undefined ? {} : { idleMs }),
    })) {
      if (event !== "changes") continue;
      const parsed = ChangesEvent.safeParse(JSON.parse(data));
      if (parsed.success) yield parsed.data;
    }
  }

  // ---- plumbing ----

  /** An authenticated JSON request, with the clock offset measured on the answer. */
  private async timed<S extends z.ZodType>(
    tokens: TokenSource,
    call: (headers: Record<string, string>) => Promise<Response>,
    schema: S,
  ): Promise<Timed<z.infer<S>>> {
    const now = this.opts.now ?? Date.now;
    // The midpoint of the request that was answered (the retry's, after a refresh).
    let mid = 0;
    const timed = async (headers: Record<string, string>) => {
      const t0 = now();
      const res = await call(headers);
      mid = (t0 + now()) / 2;
      return res;
    };
    const res = await this.authed(tokens, timed);
    const body = await this.parse(res, schema);
    const serverTime = (body as { server_time?: unknown }).server_time;
    return { body, offsetMs: typeof serverTime === "number" ? Math.round(serverTime - mid) : undefined };
  }
}
