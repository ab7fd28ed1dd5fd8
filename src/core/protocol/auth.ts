/**
 * Auth protocol: API-key exchange and the OAuth 2.0 device authorization grant (RFC 8628), with
 * short-lived access tokens and rotating refresh tokens (RFC 6749). Token errors use the RFC 6749
 * §5.2 shape `{error, error_description}`, not problem+json, because OAuth clients expect it.
 */
import { z } from "zod";
import { Memory } from "../memory.ts";

export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";
/** Dionysus extension grant: exchange a long-lived API key for tokens. */
export const API_KEY_GRANT = "urn:dionysus:params:oauth:grant-type:api_key";
/**
 * Dionysus extension grant: a copy of a device's data dir (a restored backup, a clone, a VM
 * rolled back) asks for a device identity of its own. It presents the refresh token it holds and
 * a fresh `device_id`; the VPS registers that device for the same user and issues it a new token
 * family. The presented token is not rotated, so the original device keeps working. A token that
 * was already rotated is refused without revoking anything (a copy holding an old token is not a
 * thief); that copy signs in again with `dionysus login`.
 */
export const DEVICE_SPLIT_GRANT = "urn:dionysus:params:oauth:grant-type:device_split";

/** A device id: 1-64 letters, digits, or `_ . : -` (a path parameter too). */
export const DeviceId = z
  .string()
  .regex(/^[A-Za-z0-9_.:-]{1,64}$/, "device_id: 1-64 letters, digits, or _ . : -");

/** Free text shown in listings: no control characters (NUL, tabs, newlines). */
const Label = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .refine((s) => ![...s].some((ch) => ch < " " || ch === "\u007f"), "must not contain control characters");

/** What a device says about itself when it authenticates; registered on first sight. */
export const DeviceInfo = z.object({
  device_id: DeviceId,
  device_name: Label(120).optional(),
  platform: Label(40).optional(),
});
export type DeviceInfo = z.infer<typeof DeviceInfo>;

/** `POST /v1/auth/device` (RFC 8628 §3.1). */
export const DeviceAuthorizationRequest = DeviceInfo.extend({
  client_id: z
    .string()
    .max(100)
    .refine((s) => !s.includes("\u0000"), "client_id must not contain NUL")
    .optional(),
});
export type DeviceAuthorizationRequest = z.infer<typeof DeviceAuthorizationRequest>;

/** RFC 8628 §3.2. */
export const DeviceAuthorizationResponse = z.object({
  device_code: z.string(),
  user_code: z.string(),
  verification_uri: z.string(),
  verification_uri_complete: z.string().optional(),
  expires_in: z.number().int(),
  interval: z.number().int(),
});
export type DeviceAuthorizationResponse = z.infer<typeof DeviceAuthorizationResponse>;

/** `POST /v1/auth/token`, form-encoded or JSON. */
export const TokenRequest = z.discriminatedUnion("grant_type", [
  z.object({
    grant_type: z.literal(DEVICE_CODE_GRANT),
    device_code: z.string().min(1),
    client_id: z.string().optional(),
  }),
  z.object({ grant_type: z.literal("refresh_token"), refresh_token: z.string().min(1) }),
  DeviceInfo.extend({ grant_type: z.literal(API_KEY_GRANT), api_key: z.string().min(1) }),
  DeviceInfo.extend({ grant_type: z.literal(DEVICE_SPLIT_GRANT), refresh_token: z.string().min(1) }),
]);
export type TokenRequest = z.infer<typeof TokenRequest>;

export const TokenResponse = z.object({
  access_token: z.string(),
  token_type: z.literal("Bearer"),
  expires_in: z.number().int(),
  refresh_token: z.string(),
  user_id: z.string(),
  device_id: z.string(),
});
export type TokenResponse = z.infer<typeof TokenResponse>;

/** RFC 6749 §5.2 and RFC 8628 §3.5 error codes. */
export const OAuthErrorCode = z.enum([
  "invalid_request",
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "authorization_pending",
  "slow_down",
  "access_denied",
  "expired_token",
]);
export const OAuthError = z.object({ error: OAuthErrorCode, error_description: z.string().optional() });
export type OAuthError = z.infer<typeof OAuthError>;

/** A registered device, as `GET /v1/devices` and `dionysus vps devices` show it. */
export const Device = z.object({
  device_id: z.string(),
  user_id: z.string(),
  device_name: z.string().nullable(),
  platform: z.string().nullable(),
  created_at: z.string(),
  last_seen: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
export type Device = z.infer<typeof Device>;

/** `GET /v1/identity`: who the user is, their identity memories, and where the feed stands. */
export const IdentityResponse = z.object({
  user: z.object({ id: z.string(), name: z.string() }),
  device: Device,
  memories: z.array(Memory),
  cursor: z.string(),
});
export type IdentityResponse = z.infer<typeof IdentityResponse>;

/** `POST /v1/webhooks`: the VPS will POST `changes` events to `url`, signed with HMAC-SHA256. */
export const WebhookRequest = z.object({
  url: z.url({ protocol: /^https?$/ }).max(2048),
  secret: z
    .string()
    .min(16)
    .max(200)
    .refine((s) => !s.includes("\u0000"), "secret must not contain NUL")
    .optional(),
});

/** A webhook id (path parameter of `DELETE /v1/webhooks/:id`). */
export const WebhookId = z.uuid("not a webhook id");
export type WebhookRequest = z.infer<typeof WebhookRequest>;
export const WebhookResponse = z.object({ id: z.string(), url: z.string(), secret: z.string() });
export type WebhookResponse = z.infer<typeof WebhookResponse>;

/** Header carrying a webhook signature: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const WEBHOOK_SIGNATURE_HEADER = "x-dionysus-signature";
