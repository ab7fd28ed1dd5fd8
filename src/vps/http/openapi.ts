/**
 * The VPS API's route table for its OpenAPI document (`GET /openapi.json`) and reference page
 * (`GET /docs`, public): every route of ./app.ts and ./routes/*.ts with its request and response
 * schemas and its error statuses. The schemas are the ones the routes validate with, so the
 * document follows them; a route missing here fails tests/integration/openapi.test.ts.
 */
import type { Hono } from "hono";
import { z } from "zod";
import { Memory } from "../../core/memory.ts";
import {
  Device,
  DeviceAuthorizationRequest,
  DeviceAuthorizationResponse,
  DeviceId,
  IdentityResponse,
  TokenRequest,
  TokenResponse,
  WebhookId,
  WebhookRequest,
  WebhookResponse,
} from "../../core/protocol/auth.ts";
import {
  AskEvent,
  AskRequest,
  ConsolidateResponse,
  GraphQueryRequest,
  GraphQueryResponse,
  Job,
  SearchRequest,
  SearchResponse,
} from "../../core/protocol/heavy.ts";
import { type ApiSpec, type OperationSpec, openApiDocument } from "../../core/protocol/openapi.ts";
import { DOCS_PAGE_CSP, renderApiPage } from "../../core/protocol/openapi-page.ts";
import {
  ConflictEntry,
  ConflictsQuery,
  MAX_PUSH_MUTATIONS,
  Mutation,
  PROTOCOL_VERSION,
  PullQuery,
  PullResponse,
  PushRequest,
  PushResponse,
} from "../../core/protocol/sync.ts";
import { VERSION } from "../../core/version.ts";
import type { AppEnv } from "./middleware.ts";

const TOKEN = ["accessToken"];
const ADMIN = ["adminToken"];
/** Every `/v1` route past authentication: no or a bad token, rate limits, the unexpected. */
const AUTHED = [401, 429, 500];
/** Routes with a JSON body. */
const BODY = [400, 413, 415];
const FORM = ["application/x-www-form-urlencoded", "application/json"];
const RATE_HEADERS = {
  "RateLimit-Limit": "Requests allowed per window (of the tightest limit)",
  "RateLimit-Remaining": "Requests left in the window",
  "RateLimit-Reset": "Seconds until the window resets",
};

const VpsHealth = z.object({
  status: z.enum(["ok", "unavailable"]),
  version: z.string(),
  protocol_version: z.number().int().describe("The sync protocol version this server speaks."),
  database: z.enum(["ok", "unreachable"]),
});
const SeqParam = z
  .string()
  .regex(/^\d{1,15}$/)
  .optional();
const Devices = z.object({ devices: z.array(Device) });
const Conflicts = z.object({ conflicts: z.array(ConflictEntry) });
const JobAnswer = z.object({ job: Job });
const WebhookInfo = z.object({
  id: z.string(),
  url: z.string(),
  device_id: z.string(),
  created_at: z.string(),
});
const Webhooks = z.object({ webhooks: z.array(WebhookInfo) });
const ApiKeyInfo = z.object({
  id: z.string(),
  prefix: z.string(),
  user_id: z.string(),
  created_at: z.string(),
  last_used_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
});
const CreatedKey = z.object({
  id: z.string(),
  key: z.string().describe("The API key; shown once, stored hashed."),
  prefix: z.string(),
  user_id: z.string(),
});
const AdminUser = z.object({ name: z.string(), password: z.string().optional() });
const AdminUserQuery = z.object({ user: z.string().describe("The user's name.") });
const DevicePageForm = z.object({
  user_code: z.string(),
  username: z.string().optional(),
  password: z.string().optional(),
  action: z.enum(["approve", "deny"]),
});

function operations(): OperationSpec[] {
  const html = (description: string) => ({ description, mediaType: "text/html" });
  return [
    {
      method: "get",
      path: "/health",
      summary: "Health, version and sync protocol version",
      tag: "operations",
      security: [],
      responses: {
        200: { description: "Up", schema: VpsHealth },
        503: { description: "The database does not answer", schema: VpsHealth },
      },
    },
    {
      method: "get",
      path: "/metrics",
      summary: "Prometheus metrics",
      tag: "operations",
      security: [],
      responses: { 200: { description: "Prometheus text format 0.0.4", mediaType: "text/plain" } },
    },
    {
      method: "get",
      path: "/openapi.json",
      summary: "This OpenAPI document",
      tag: "operations",
      security: [],
      responses: { 200: { description: "OpenAPI 3.1", mediaType: "application/json" } },
    },
    {
      method: "get",
      path: "/docs",
      summary: "The API reference as a page (no scripts, no network)",
      tag: "operations",
      security: [],
      responses: { 200: html("HTML") },
    },
    {
      method: "post",
      path: "/v1/auth/device",
      summary: "Start a device authorization (RFC 8628 §3.1)",
      tag: "auth",
      security: [],
      body: { schema: DeviceAuthorizationRequest, mediaTypes: FORM, example: { device_id: "laptop-7f3a" } },
      responses: {
        200: {
          description: "Show `user_code` and `verification_uri` to the user",
          schema: DeviceAuthorizationResponse,
        },
      },
      oauthErrors: [400, 413, 429],
    },
    {
      method: "post",
      path: "/v1/auth/token",
      summary: "Issue tokens: device code, API key, refresh or device split",
      description:
        "An API key (`dny_…`, from `dionysus vps key create`) is exchanged here for tokens with the " +
        "`urn:dionysus:params:oauth:grant-type:api_key` grant; it is never sent to other endpoints.",
      tag: "auth",
      security: [],
      body: {
        schema: TokenRequest,
        mediaTypes: FORM,
        example: { grant_type: "refresh_token", refresh_token: "dnr_…" },
      },
      responses: {
        200: { description: "Tokens (the refresh token rotates)", schema: TokenResponse },
      },
      oauthErrors: [400, 401, 413, 429],
    },
    {
      method: "get",
      path: "/device",
      summary: "The page where a user approves a device",
      tag: "auth",
      security: [],
      query: z.object({ code: z.string().optional().describe("The user code, prefilled.") }),
      responses: { 200: html("The approval page"), 429: html("Rate limited") },
    },
    {
      method: "post",
      path: "/device",
      summary: "Approve or deny a device (the page's form)",
      tag: "auth",
      security: [],
      body: { schema: DevicePageForm, mediaTypes: ["application/x-www-form-urlencoded"] },
      responses: {
        200: html("Approved or denied"),
        400: html("Unknown code or incomplete form"),
        401: html("Wrong user name or password"),
        403: html("Sent from another site"),
        409: html("The user has too many devices"),
        429: html("Too many failed sign-ins"),
      },
    },
    {
      method: "get",
      path: "/v1/identity",
      summary: "The user, this device, the identity memories and the feed position",
      tag: "sync",
      security: TOKEN,
      responses: { 200: { description: "The identity baseline", schema: IdentityResponse } },
      problems: AUTHED,
    },
    {
      method: "get",
      path: "/v1/devices",
      summary: "The caller's devices",
      tag: "devices",
      security: TOKEN,
      responses: { 200: { description: "The devices", schema: Devices } },
      problems: AUTHED,
    },
    {
      method: "delete",
      path: "/v1/devices/{id}",
      summary: "Revoke one of the caller's devices",
      tag: "devices",
      security: TOKEN,
      params: z.object({ id: DeviceId }),
      responses: { 200: { description: "The revoked device", schema: Device } },
      problems: [400, 404, ...AUTHED],
    },
    {
      method: "post",
      path: "/v1/sync/push",
      summary: "Push a batch of the device's writes",
      description:
        `At most ${MAX_PUSH_MUTATIONS} mutations (\`max_push_mutations\`). Each one is a \`Mutation\` ` +
        "(see the schemas), validated one by one: a malformed one is rejected in its result while the others apply.",
      tag: "sync",
      security: TOKEN,
      body: {
        schema: PushRequest,
        example: {
          mutations: [
            {
              mutation_id: 42,
              op: "delete",
              id: "01937a11-0000-7000-8000-000000000000",
              hlc: "000001764259200500-000000-laptop-7f3a",
            },
          ],
        },
      },
      responses: {
        200: { description: "One result per mutation", schema: PushResponse, headers: RATE_HEADERS },
      },
      problems: [...BODY, ...AUTHED],
    },
    {
      method: "get",
      path: "/v1/sync/pull",
      summary: "A page of the change feed after a cursor",
      tag: "sync",
      security: TOKEN,
      query: PullQuery,
      responses: { 200: { description: "Changes, or `refetch`", schema: PullResponse } },
      problems: [400, ...AUTHED],
    },
    {
      method: "get",
      path: "/v1/conflicts",
      summary: "The user's conflict log, newest first",
      tag: "sync",
      security: TOKEN,
      query: ConflictsQuery,
      responses: { 200: { description: "The versions that lost", schema: Conflicts } },
      problems: [400, ...AUTHED],
    },
    {
      method: "get",
      path: "/v1/events",
      summary: "Server-sent events: `changes` pokes and `job` progress",
      description:
        "Resume with the `Last-Event-ID` header (or `last_event_id`); a heartbeat comment every 15 s.",
      tag: "realtime",
      security: TOKEN,
      query: z.object({ last_event_id: SeqParam.describe("As `Last-Event-ID`.") }),
      headers: z.object({
        "Last-Event-ID": SeqParam.describe(
          "The last `changes` seq seen: a poke comes at once if the feed moved past it.",
        ),
      }),
      responses: { 200: { description: "The event stream", mediaType: "text/event-stream" } },
      problems: [400, ...AUTHED],
    },
    {
      method: "post",
      path: "/v1/search",
      summary: "Keyword, semantic or hybrid search over all of the user's memories",
      tag: "queries",
      security: TOKEN,
      body: { schema: SearchRequest, example: { query: "design team logo", mode: "hybrid", limit: 10 } },
      responses: { 200: { description: "The hits, best first", schema: SearchResponse } },
      problems: [...BODY, ...AUTHED, 503],
    },
    {
      method: "post",
      path: "/v1/graph/query",
      summary: "Entities around one entity, with the memories behind them",
      tag: "queries",
      security: TOKEN,
      body: { schema: GraphQueryRequest, example: { entity: "Ana Lima", depth: 2, limit: 20 } },
      responses: {
        200: {
          description: "Nodes, edges, memories (empty for an unknown entity)",
          schema: GraphQueryResponse,
        },
      },
      problems: [...BODY, ...AUTHED, 503],
    },
    {
      method: "post",
      path: "/v1/consolidate",
      summary: "Start (or join) the user's consolidation job",
      tag: "queries",
      security: TOKEN,
      responses: { 202: { description: "The job", schema: ConsolidateResponse } },
      problems: [...AUTHED, 503],
    },
    {
      method: "get",
      path: "/v1/jobs/{id}",
      summary: "One of the user's jobs",
      tag: "queries",
      security: TOKEN,
      responses: { 200: { description: "The job", schema: JobAnswer } },
      problems: [404, ...AUTHED],
    },
    {
      method: "post",
      path: "/v1/ask",
      summary: "A question answered by a model from the user's memories (streamed)",
      tag: "queries",
      security: TOKEN,
      body: { schema: AskRequest, example: { question: "Where did I leave the spare key?", limit: 8 } },
      responses: {
        200: {
          description: "One event per line: `sources`, `delta`s, then `done` (or `error`)",
          schema: AskEvent,
          mediaType: "application/x-ndjson",
        },
      },
      problems: [...BODY, ...AUTHED, 503],
    },
    {
      method: "post",
      path: "/v1/webhooks",
      summary: "Register a webhook for the user's `changes` events",
      tag: "realtime",
      security: TOKEN,
      body: { schema: WebhookRequest, example: { url: "https://example.org/dionysus-hook" } },
      responses: {
        201: { description: "Registered; `secret` signs the deliveries", schema: WebhookResponse },
      },
      problems: [...BODY, 409, ...AUTHED],
    },
    {
      method: "get",
      path: "/v1/webhooks",
      summary: "The user's webhooks (without secrets)",
      tag: "realtime",
      security: TOKEN,
      responses: { 200: { description: "The webhooks", schema: Webhooks } },
      problems: AUTHED,
    },
    {
      method: "delete",
      path: "/v1/webhooks/{id}",
      summary: "Remove a webhook",
      tag: "realtime",
      security: TOKEN,
      params: z.object({ id: WebhookId }),
      responses: { 204: { description: "Removed" } },
      problems: [400, 404, ...AUTHED],
    },
    ...adminOperations(),
    ...pageOperations(),
  ];
}

/** The server's own page (./pages/): HTML, a password sign-in and a session cookie. */
function pageOperations(): OperationSpec[] {
  const html = (description: string) => ({ description, mediaType: "text/html" });
  const page = { tag: "page", security: [] as string[] };
  return [
    {
      ...page,
      method: "get",
      path: "/",
      summary: "The page: sign-in, or the user's devices, sync state and jobs",
      responses: { 200: html("The page"), 429: html("Rate limited") },
    },
    {
      ...page,
      method: "get",
      path: "/assets/vps.css",
      summary: "The page's style sheet",
      responses: { 200: { description: "CSS", mediaType: "text/css" } },
    },
    {
      ...page,
      method: "post",
      path: "/signin",
      summary: "Sign in with user name and password (sets the session cookie)",
      body: {
        schema: z.object({ username: z.string(), password: z.string() }),
        mediaTypes: ["application/x-www-form-urlencoded"],
      },
      responses: {
        303: { description: "Back to the page" },
        401: html("Wrong user name or password"),
        429: html("Too many failed sign-ins"),
      },
    },
    {
      ...page,
      method: "post",
      path: "/signout",
      summary: "Sign out (ends the session)",
      responses: { 303: { description: "Back to the page" } },
    },
    {
      ...page,
      method: "post",
      path: "/devices/{id}/revoke",
      summary: "Revoke one of the signed-in user's devices (the page's form)",
      responses: {
        303: { description: "Back to the page" },
        403: html("Not signed in, or sent from another site"),
      },
    },
  ];
}

/** `/admin/*`: loopback only, with the admin token; absent when the server has no admin token. */
function adminOperations(): OperationSpec[] {
  const admin = (op: Omit<OperationSpec, "tag" | "security" | "problems">): OperationSpec => ({
    ...op,
    description: "Loopback only (a forwarded request is refused), with the admin token.",
    tag: "admin",
    security: ADMIN,
    problems: [400, 401, 403, 404, 413],
  });
  return [
    admin({
      method: "post",
      path: "/admin/users",
      summary: "Add a user",
      body: { schema: AdminUser, example: { name: "alice" } },
      responses: { 201: { description: "The user", schema: z.object({ id: z.string(), name: z.string() }) } },
    }),
    admin({
      method: "post",
      path: "/admin/keys",
      summary: "Create an API key for a user",
      body: { schema: z.object({ user: z.string() }), example: { user: "alice" } },
      responses: { 201: { description: "The key, shown once", schema: CreatedKey } },
    }),
    admin({
      method: "post",
      path: "/admin/users/delete",
      summary: "Delete a user and everything they own",
      body: { schema: z.object({ user: z.string() }), example: { user: "alice" } },
      responses: { 200: { description: "What was deleted", schema: z.record(z.string(), z.unknown()) } },
    }),
    admin({
      method: "post",
      path: "/admin/users/password",
      summary: "Set (or clear) a user's password",
      body: {
        schema: z.object({ user: z.string(), password: z.string().optional() }),
        example: { user: "alice" },
      },
      responses: { 200: { description: "The user", schema: z.record(z.string(), z.unknown()) } },
    }),
    admin({
      method: "get",
      path: "/admin/keys",
      summary: "A user's API keys",
      query: AdminUserQuery,
      responses: {
        200: { description: "The keys (never the secrets)", schema: z.object({ keys: z.array(ApiKeyInfo) }) },
      },
    }),
    admin({
      method: "post",
      path: "/admin/keys/revoke",
      summary: "Revoke an API key",
      body: { schema: z.object({ user: z.string(), key: z.string() }) },
      responses: {
        200: {
          description: "The revoked key, and the devices whose sign-ins with it this revocation ended",
          schema: ApiKeyInfo.extend({ signed_out_devices: z.array(z.string()) }),
        },
      },
    }),
    admin({
      method: "get",
      path: "/admin/devices",
      summary: "A user's devices",
      query: AdminUserQuery,
      responses: { 200: { description: "The devices", schema: Devices } },
    }),
    admin({
      method: "post",
      path: "/admin/revoke",
      summary: "Revoke a device",
      body: { schema: z.object({ device: z.string(), user: z.string().optional() }) },
      responses: { 200: { description: "The revoked device", schema: Device } },
    }),
  ];
}

/** The VPS API's description; built on first use (it walks every schema). */
export function vpsApiSpec(): ApiSpec {
  return {
    title: "Dionysus VPS",
    version: VERSION,
    description:
      "The self-hosted server: OAuth sign-in, the sync protocol, realtime pokes and the queries over all " +
      "of a user's memories. Every `/v1` call is scoped to the access token's user. Errors are " +
      "`application/problem+json`, except `/v1/auth/*`, which answer `{error, error_description}` (RFC 6749 §5.2).",
    securitySchemes: {
      accessToken: {
        type: "http",
        scheme: "bearer",
        bearerFormat: "opaque (dna_…)",
        description:
          "An OAuth 2.0 access token from `POST /v1/auth/token`: the device authorization grant (RFC 8628, " +
          "what `dionysus login` uses), an API key exchanged with the `urn:dionysus:params:oauth:grant-type:api_key` " +
          "grant, or a refresh token. Expires after `access_token_ttl_s`; checked against the database on every call.",
      },
      adminToken: {
        type: "http",
        scheme: "bearer",
        description:
          "The admin token of the running server, for `/admin/*` over loopback (`dionysus vps …`).",
      },
    },
    components: {
      Memory,
      Mutation,
      Device,
      PushResponse,
      PullResponse,
      ConflictEntry,
      IdentityResponse,
      SearchResponse,
      GraphQueryResponse,
      ConsolidateResponse,
      AskEvent,
      TokenResponse,
      DeviceAuthorizationResponse,
      WebhookResponse,
      ApiKeyInfo,
    },
    operations: operations(),
    extensions: { "x-protocol-version": PROTOCOL_VERSION },
  };
}

let cached: { json: string; html: string } | undefined;

/** Serves `GET /openapi.json` and `GET /docs`, both public. */
export function mountOpenApi(app: Hono<AppEnv>): void {
  const built = () => {
    if (!cached) {
      const doc = openApiDocument(vpsApiSpec());
      cached = { json: JSON.stringify(doc), html: renderApiPage(doc) };
    }
    return cached;
  };
  app.get("/openapi.json", (c) => c.body(built().json, 200, { "Content-Type": "application/json" }));
  app.get("/docs", (c) => c.html(built().html, 200, { "Content-Security-Policy": DOCS_PAGE_CSP }));
}
