/** The VPS HTTP API in-process (app.request): auth, the device flow page, devices, admin, limits, logs. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DEVICE_CODE_GRANT, DeviceAuthorizationResponse } from "../../src/core/protocol/auth.ts";
import { makeTestApp, openTestBackend, signIn, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;
let clock = Date.now();

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend, {}, { now: () => clock, listenUrl: () => "http://vps.test" });
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
});

const form = (o: Record<string, string>) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded" },
  body: new URLSearchParams(o).toString(),
});

describe("token endpoint", () => {
  test("API key grant works form-encoded and as JSON; errors use the OAuth shape", async () => {
    const a = await signIn(t, "laptop");
    const viaForm = await t.req(
      "/v1/auth/token",
      form({
        grant_type: "urn:dionysus:params:oauth:grant-type:api_key",
        api_key: a.user.key,
        device_id: "desk",
      }),
    );
    expect(viaForm.status).toBe(200);
    expect(viaForm.headers.get("cache-control")).toBe("no-store");
    expect(await viaForm.json()).toMatchObject({ token_type: "Bearer", expires_in: 3600, device_id: "desk" });

    const wrong = await t.req(
      "/v1/auth/token",
      form({
        grant_type: "urn:dionysus:params:oauth:grant-type:api_key",
        api_key: "dny_wrong",
        device_id: "x",
      }),
    );
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: "invalid_grant" });
    const unsupported = await t.req("/v1/auth/token", form({ grant_type: "password" }));
    expect(await unsupported.json()).toMatchObject({ error: "unsupported_grant_type" });
    const missing = await t.req("/v1/auth/token", form({}));
    expect(await missing.json()).toMatchObject({ error: "invalid_request" });
    const badDevice = await t.req(
      "/v1/auth/token",
      form({
        grant_type: "urn:dionysus:params:oauth:grant-type:api_key",
        api_key: a.user.key,
        device_id: "bad id!",
      }),
    );
    expect(await badDevice.json()).toMatchObject({ error: "invalid_request" });
    const text = await t.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "x",
    });
    expect(text.status).toBe(400);
    expect(await text.json()).toMatchObject({ error: "invalid_request" });
  });

  test("refresh tokens rotate over HTTP and a replayed one is refused", async () => {
    const a = await signIn(t);
    const r1 = await t.req(
      "/v1/auth/token",
      form({ grant_type: "refresh_token", refresh_token: a.tokens.refresh_token }),
    );
    expect(r1.status).toBe(200);
    const r2 = await t.req(
      "/v1/auth/token",
      form({ grant_type: "refresh_token", refresh_token: a.tokens.refresh_token }),
    );
    expect(r2.status).toBe(400);
    expect(await r2.json()).toMatchObject({ error: "invalid_grant" });
  });
});

describe("device authorization grant (RFC 8628) over HTTP", () => {
  async function start(deviceId = "tv") {
    const res = await t.req(
      "/v1/auth/device",
      form({ device_id: deviceId, device_name: "Living <room> TV" }),
    );
    expect(res.status).toBe(200);
    return DeviceAuthorizationResponse.parse(await res.json());
  }
  const poll = (device_code: string) =>
    t.req("/v1/auth/token", form({ grant_type: DEVICE_CODE_GRANT, device_code }));

  test("pending, slow_down, sign-in on /device, then tokens", async () => {
    const name = `u${crypto.randomUUID().slice(0, 8)}`;
    await t.services.admin.addUser(name, "correct horse battery");
    const d = await start();
    expect(d.verification_uri).toBe("http://vps.test/device");
    expect(d.verification_uri_complete).toBe(`http://vps.test/device?code=${d.user_code}`);
    expect(await (await poll(d.device_code)).json()).toMatchObject({ error: "authorization_pending" });
    const fast = await poll(d.device_code);
    expect(fast.status).toBe(400);
    expect(await fast.json()).toMatchObject({ error: "slow_down" });

    const pageRes = await t.req(`/device?code=${d.user_code}`);
    expect(pageRes.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await pageRes.text();
    expect(html).toContain("Living &lt;room&gt; TV");
    expect(html).not.toContain("<room>");

    const wrong = await t.req(
      "/device",
      form({ user_code: d.user_code, username: name, password: "wrong password", action: "approve" }),
    );
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("Wrong user name or password.");
    const ok = await t.req(
      "/device",
      form({
        user_code: d.user_code.toLowerCase(),
        username: name,
        password: "correct horse battery",
        action: "approve",
      }),
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("Approved.");
    const tokens = await poll(d.device_code);
    expect(tokens.status).toBe(200);
    const body = (await tokens.json()) as { access_token: string };
    const ident = await t.req("/v1/identity", { headers: { authorization: `Bearer ${body.access_token}` } });
    expect(ident.status).toBe(200);
    expect(await ident.json()).toMatchObject({
      user: { name },
      device: { device_id: "tv", device_name: "Living <room> TV" },
    });
    expect(await (await poll(d.device_code)).json()).toMatchObject({ error: "invalid_grant" });
  });

  test("Deny on the page answers access_denied; expiry answers expired_token", async () => {
    const d = await start("d-deny");
    const res = await t.req("/device", form({ user_code: d.user_code, action: "deny" }));
    expect(await res.text()).toContain("Denied.");
    expect(await (await poll(d.device_code)).json()).toMatchObject({ error: "access_denied" });
    const e = await start("d-exp");
    const saved = clock;
    clock += 11 * 60_000;
    try {
      expect(await (await poll(e.device_code)).json()).toMatchObject({ error: "expired_token" });
    } finally {
      clock = saved;
    }
  });

  test("the page escapes what it echoes, refuses cross-site posts and limits failed sign-ins", async () => {
    const xss = await t.req(`/device?code=${encodeURIComponent('"><script>alert(1)</script>')}`);
    const html = await xss.text();
    expect(html).not.toContain("<script>");
    expect(html).toContain("&quot;&gt;&lt;script&gt;");
    const d = await start("d-limit");
    const cross = await t.req("/device", {
      ...form({ user_code: d.user_code, username: "x", password: "y", action: "approve" }),
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://evil.example" },
    });
    expect(cross.status).toBe(403);
    // A fresh app: the failure budget is per address, and this file's other tests share one.
    const fresh = await makeTestApp(backend, {}, { now: () => clock });
    const target = `victim${crypto.randomUUID().slice(0, 6)}`;
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await fresh.req(
        "/device",
        form({ user_code: d.user_code, username: target, password: `guess-${i}`, action: "approve" }),
      );
      statuses.push(r.status);
    }
    await fresh.stop();
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    expect(await (await poll(d.device_code)).json()).toMatchObject({ error: "authorization_pending" });
  });

  test("a malformed device request is invalid_request", async () => {
    const res = await t.req("/v1/auth/device", form({ device_id: "" }));
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: "invalid_request" });
  });
});

describe("credentials on /v1 endpoints", () => {
  test("missing, wrong, expired and revoked credentials get 401 problem+json", async () => {
    const a = await signIn(t, "dev-401");
    const none = await t.req("/v1/sync/pull");
    expect(none.status).toBe(401);
    expect(none.headers.get("content-type")).toContain("application/problem+json");
    expect(none.headers.get("www-authenticate")).toContain("Bearer");
    expect(await none.json()).toMatchObject({ code: "unauthorized", status: 401 });
    expect((await t.req("/v1/sync/pull", { headers: { authorization: "Bearer dna_wrong" } })).status).toBe(
      401,
    );
    expect((await t.req("/v1/sync/pull", { headers: { authorization: "Basic abc" } })).status).toBe(401);
    expect((await t.req("/v1/sync/pull", { headers: a.auth })).status).toBe(200);
    const saved = clock;
    clock += 3601_000;
    try {
      expect((await t.req("/v1/sync/pull", { headers: a.auth })).status).toBe(401);
    } finally {
      clock = saved;
    }
    const other = await signIn(t, "dev-other", a.user);
    const del = await t.req("/v1/devices/dev-401", { method: "DELETE", headers: other.auth });
    expect(del.status).toBe(200);
    expect(await del.json()).toMatchObject({ device_id: "dev-401" });
    expect((await t.req("/v1/sync/pull", { headers: a.auth })).status).toBe(401);
    expect((await t.req("/v1/identity", { headers: a.auth })).status).toBe(401);
  });

  test("devices: listed for their own user only; another user's device cannot be revoked", async () => {
    const a = await signIn(t, "same-id");
    const b = await signIn(t, "same-id");
    const list = (await (await t.req("/v1/devices", { headers: a.auth })).json()) as {
      devices: Array<{ user_id: string }>;
    };
    expect(list.devices.map((d) => d.user_id)).toEqual([a.tokens.user_id]);
    await signIn(t, "b-only", b.user);
    expect((await t.req("/v1/devices/b-only", { method: "DELETE", headers: a.auth })).status).toBe(404);
    expect((await t.req("/v1/devices", { headers: b.auth })).status).toBe(200);
    const bList = (await (await t.req("/v1/devices", { headers: b.auth })).json()) as {
      devices: Array<{ device_id: string; revoked_at: string | null }>;
    };
    expect(bList.devices.map((d) => [d.device_id, d.revoked_at]).sort()).toEqual([
      ["b-only", null],
      ["same-id", null],
    ]);
  });
});

describe("admin API", () => {
  test("loopback and the admin token only", async () => {
    const body = JSON.stringify({
      name: `adm${crypto.randomUUID().slice(0, 6)}`,
      password: "long enough pw",
    });
    const headers = { "content-type": "application/json", authorization: "Bearer admin-secret-token" };
    expect(
      (
        await t.req("/admin/users", {
          method: "POST",
          headers: { ...headers, authorization: "Bearer nope" },
          body,
        })
      ).status,
    ).toBe(401);
    const remote = await makeTestApp(backend, {}, { clientIp: () => "203.0.113.9" });
    try {
      expect((await remote.req("/admin/users", { method: "POST", headers, body })).status).toBe(403);
    } finally {
      await remote.stop();
    }
    const created = await t.req("/admin/users", { method: "POST", headers, body });
    expect(created.status).toBe(201);
    const { name } = (await created.json()) as { name: string };
    const key = await t.req("/admin/keys", { method: "POST", headers, body: JSON.stringify({ user: name }) });
    expect(key.status).toBe(201);
    expect(((await key.json()) as { key: string }).key).toStartWith("dny_");
    const dup = await t.req("/admin/users", { method: "POST", headers, body });
    expect(dup.status).toBe(409);
  });
});

describe("rate limits, health, metrics, logs", () => {
  test("per device: 429 with Retry-After and RateLimit headers", async () => {
    // Counters live in the database the test apps share: an address of this test's own.
    const limited = await makeTestApp(backend, { rate_limit_per_min: 3 }, { clientIp: () => "192.0.2.31" });
    try {
      const a = await signIn(limited, "rl-a");
      const b = await signIn(limited, "rl-b", a.user);
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await limited.req("/v1/sync/pull", { headers: a.auth });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Number(last!.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(last!.headers.get("ratelimit-limit")).toBe("3");
      expect(last!.headers.get("ratelimit-remaining")).toBe("0");
      expect(await last!.json()).toMatchObject({ code: "rate_limited", status: 429 });
      // Another device of the same user has its own budget.
      const other = await limited.req("/v1/sync/pull", { headers: b.auth });
      expect(other.status).toBe(200);
      expect(other.headers.get("ratelimit-remaining")).toBe("2");
      // Unauthenticated endpoints count per client address: two sign-ins above, one more allowed.
      const third = await limited.req(
        "/v1/auth/token",
        form({ grant_type: "refresh_token", refresh_token: "dnr_x" }),
      );
      expect(third.status).toBe(400);
      const fourth = await limited.req(
        "/v1/auth/token",
        form({ grant_type: "refresh_token", refresh_token: "dnr_x" }),
      );
      expect(fourth.status).toBe(429);
      expect(fourth.headers.get("retry-after")).not.toBeNull();
    } finally {
      await limited.stop();
    }
  });

  test("/health, /metrics, request ids", async () => {
    const h = await t.req("/health");
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: "ok", database: "ok" });
    const r = await t.req("/nope", { headers: { "x-request-id": "req-123" } });
    expect(r.status).toBe(404);
    expect(r.headers.get("x-request-id")).toBe("req-123");
    expect(r.headers.get("content-type")).toContain("application/problem+json");
    const m = await (await t.req("/metrics")).text();
    expect(m).toContain('dionysus_http_requests_total{method="GET",route="/health",status="200"}');
    expect(m).toContain("dionysus_http_request_duration_seconds_bucket");
    expect(m).toContain("dionysus_sse_connections 0");
    expect(m).toContain("dionysus_webhook_deliveries_pending");
    expect(t.logs.some((l) => l.request_id === "req-123" && l.status === 404)).toBe(true);
  });

  test("logs never contain passwords, API keys or tokens", async () => {
    const a = await signIn(t, "log-dev");
    await t.req("/v1/sync/pull?since=bad", { headers: a.auth });
    await t.req(
      "/v1/auth/token",
      form({ grant_type: "refresh_token", refresh_token: a.tokens.refresh_token }),
    );
    const all = JSON.stringify(t.logs);
    expect(t.logs.length).toBeGreaterThan(20);
    for (const secret of [
      a.user.key,
      a.tokens.access_token,
      a.tokens.refresh_token,
      "correct horse battery",
      "admin-secret-token",
    ])
      expect(all).not.toContain(secret);
    expect(all).not.toMatch(/dn[yar]_[A-Za-z0-9_-]{20}/);
  });
});
