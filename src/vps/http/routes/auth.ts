/**
 * The OAuth endpoints: `POST /v1/auth/device` starts a device authorization (RFC 8628) and
 * `POST /v1/auth/token` issues tokens (device code, API key, refresh, device split). Both answer
 * errors in the OAuth shape `{error, error_description}` (RFC 6749 §5.2), never problem+json.
 */
import { Hono } from "hono";
import {
  API_KEY_GRANT,
  DEVICE_CODE_GRANT,
  DEVICE_SPLIT_GRANT,
  DeviceAuthorizationRequest,
  type DeviceInfo,
  TokenRequest,
} from "../../../core/protocol/auth.ts";
import { OAuthFailure } from "../../auth/errors.ts";
import { type AppEnv, parseOAuth, type RouteContext, readFormOrJson } from "../middleware.ts";

export function authRoutes({ vps, limitOAuth, publicBase }: RouteContext): Hono<AppEnv> {
  const { auth } = vps;
  const app = new Hono<AppEnv>();

  app.post("/v1/auth/device", async (c) => {
    await limitOAuth(c, "invalid_request");
    const req = parseOAuth(DeviceAuthorizationRequest, await readFormOrJson(c));
    const res = await auth.startDeviceAuthorization(req, `${publicBase()}/device`);
    return c.json(res, 200, { "Cache-Control": "no-store" });
  });

  app.post("/v1/auth/token", async (c) => {
    let body: Record<string, unknown> | undefined;
    let unreadable: unknown;
    try {
      body = await readFormOrJson(c);
    } catch (err) {
      unreadable = err;
    }
    // RFC 8628 §3.5: a device polling too fast is told to slow_down; other grants have no
    // rate-limit error in RFC 6749 §5.2, so they get invalid_request (status 429, Retry-After).
    await limitOAuth(c, body?.grant_type === DEVICE_CODE_GRANT ? "slow_down" : "invalid_request");
    if (!body) throw unreadable;
    const grant = body.grant_type;
    if (typeof grant !== "string" || grant === "")
      throw new OAuthFailure("invalid_request", "grant_type is required");
    if (![DEVICE_CODE_GRANT, API_KEY_GRANT, DEVICE_SPLIT_GRANT, "refresh_token"].includes(grant))
      throw new OAuthFailure("unsupported_grant_type", `grant_type ${grant} is not supported`);
    const r = parseOAuth(TokenRequest, body);
    const tokens =
      r.grant_type === DEVICE_CODE_GRANT
        ? await auth.pollDeviceCode(r.device_code)
        : r.grant_type === "refresh_token"
          ? await auth.refresh(r.refresh_token)
          : r.grant_type === DEVICE_SPLIT_GRANT
            ? await auth.splitDevice(r.refresh_token, deviceInfoOf(r))
            : await auth.tokenForApiKey(r.api_key, deviceInfoOf(r));
    return c.json(tokens, 200, { "Cache-Control": "no-store", Pragma: "no-cache" });
  });

  return app;
}

/** The device fields of a token request, without the absent optional ones. */
function deviceInfoOf(r: DeviceInfo): DeviceInfo {
  return {
    device_id: r.device_id,
    ...(r.device_name ? { device_name: r.device_name } : {}),
    ...(r.platform ? { platform: r.platform } : {}),
  };
}
