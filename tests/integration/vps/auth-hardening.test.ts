/**
 * VPS hardening in-process (app.request): sign-in lockout under concurrency and keyed per user and
 * address, trusted proxies, body limits, OAuth-shaped 429s, verification_uri, NUL and invalid
 * UTF-8, device and per-user caps, API key list/revoke.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  API_KEY_GRANT,
  DEVICE_CODE_GRANT,
  DEVICE_SPLIT_GRANT,
  DeviceAuthorizationResponse,
} from "../../../src/core/protocol/auth.ts";
import type { VpsAppDeps } from "../../../src/vps/http/app.ts";
import {
  makeTestApp,
  openTestBackend,
  signIn,
  type TestApp,
  type TestBackend,
} from "../../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;
const apps: TestApp[] = [];

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend);
});
afterAll(async () => {
  for (const a of apps) await a.stop();
  await t?.stop();
  await backend?.close();
});

async function app(config: Parameters<typeof makeTestApp>[1] = {}, extra: Partial<VpsAppDeps> = {}) {
  const a = await makeTestApp(backend, config, extra);
  apps.push(a);
  return a;
}

const form = (o: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(o).toString(),
});

async function newUser(a: TestApp, password = "correct horse battery") {
  const name = `u${crypto.randomUUID().slice(0, 8)}`;
  await a.services.admin.addUser(name, password);
  return name;
}

async function startCode(a: TestApp, deviceId = `d${crypto.randomUUID().slice(0, 6)}`, headers = {}) {
  const res = await a.req("/v1/auth/device", form({ device_id: deviceId }, headers));
  expect(res.status).toBe(200);
  return DeviceAuthorizationResponse.parse(await res.json());
}

const poll = (a: TestApp, device_code: string) =>
  a.req("/v1/auth/token", form({ grant_type: DEVICE_CODE_GRANT, device_code }));

describe("sign-in lockout on /device", () => {
  test("40 concurrent guesses: the failure budget is reserved before the password check", async () => {
    const a = await app();
    const name = await newUser(a);
    const d = await startCode(a);
    const attempts = Array.from({ length: 40 }, (_, i) =>
      a.req(
        "/device",
        form({
          user_code: d.user_code,
          username: name,
          password: i === 39 ? "correct horse battery" : `guess-${i}`,
          action: "approve",
        }),
      ),
    );
    const statuses = (await Promise.all(attempts)).map((r) => r.status);
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(35);
    expect(statuses[39]).toBe(429);
    expect(await (await poll(a, d.device_code)).json()).toMatchObject({ error: "authorization_pending" });
  });

  test("a right password is refunded: it does not use up the budget", async () => {
    const a = await app({}, { signInFailuresPer15Min: 2 });
    const name = await newUser(a);
    for (let i = 0; i < 4; i++) {
      const d = await startCode(a);
      const r = await a.req(
        "/device",
        form({
          user_code: d.user_code,
          username: name,
          password: "correct horse battery",
          action: "approve",
        }),
      );
      expect(r.status).toBe(200);
    }
  });

  test("the lockout is per user and address: another address, or another user, is not locked out", async () => {
    let ip = "198.51.100.1";
    const a = await app({}, { clientIp: () => ip });
    const victim = await newUser(a);
    const other = await newUser(a);
    const d = await startCode(a);
    const guess = (user: string, password: string) =>
      a.req("/device", form({ user_code: d.user_code, username: user, password, action: "approve" }));
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await guess(victim, `wrong-${i}`)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429]);
    // The same address may still sign in another user (below the per-address budget).
    expect((await guess(other, "wrong")).status).toBe(401);
    // The victim signs in from their own address.
    ip = "203.0.113.50";
    const ok = await guess(victim, "correct horse battery");
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("Approved.");
  });

  test("a distributed guesser is stopped by the per-user-name budget; one address by the per-address budget", async () => {
    let ip = "198.51.100.1";
    const a = await app(
      {},
      {
        clientIp: () => ip,
        signInFailuresPer15Min: 2,
        signInFailuresPerUser: 6,
        signInFailuresPerAddress: 4,
      },
    );
    const victim = await newUser(a);
    const d = await startCode(a);
    const guess = (user: string, password: string) =>
      a.req("/device", form({ user_code: d.user_code, username: user, password, action: "approve" }));
    const statuses: number[] = [];
    for (let n = 0; n < 4; n++) {
      ip = `198.51.100.${10 + n}`;
      statuses.push((await guess(victim, "x1")).status, (await guess(victim, "x2")).status);
    }
    // 6 failures in all, then every address is refused for this user name.
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401, 429, 429]);
    ip = "198.51.100.99";
    expect((await guess(victim, "correct horse battery")).status).toBe(429);
    // One address trying many user names: 4 failures, then refused for any name.
    ip = "192.0.2.77";
    const spray: number[] = [];
    for (let i = 0; i < 5; i++) spray.push((await guess(`nobody${i}`, "pw-guess")).status);
    expect(spray).toEqual([401, 401, 401, 401, 429]);
  });
});

describe("trusted proxies", () => {
  const device = (a: TestApp, xff?: string) =>
    a.req("/v1/auth/device", form({ device_id: "d" }, xff ? { "x-forwarded-for": xff } : {}));

  test("X-Forwarded-For names the client only when the peer is a trusted proxy", async () => {
    const behind = await app(
      { rate_limit_per_min: 1, trusted_proxies: ["10.0.0.0/8", "::1"] },
      { clientIp: () => "10.0.0.1" },
    );
    expect((await device(behind, "198.51.100.7")).status).toBe(200);
    expect((await device(behind, "198.51.100.8")).status).toBe(200);
    // Entries left of the right-most untrusted one are the client's own claim: ignored.
    expect((await device(behind, "1.2.3.4, 198.51.100.7")).status).toBe(429);
    // A trusted hop (a second proxy) is skipped.
    expect((await device(behind, "198.51.100.9, 10.9.9.9")).status).toBe(200);
    expect((await device(behind, "198.51.100.9")).status).toBe(429);

    const direct = await app({ rate_limit_per_min: 1 }, { clientIp: () => "10.0.0.1" });
    expect((await device(direct, "198.51.100.7")).status).toBe(200);
    expect((await device(direct, "198.51.100.8")).status).toBe(429);
  });

  test("the config key takes IPs and CIDRs, comma-separated from the environment, and refuses others", async () => {
    const { VpsConfig } = await import("../../../src/core/config.ts");
    expect(
      VpsConfig.parse({ data_dir: "/x", trusted_proxies: "10.0.0.1, fd00::/8" }).trusted_proxies,
    ).toEqual(["10.0.0.1", "fd00::/8"]);
    expect(VpsConfig.safeParse({ data_dir: "/x", trusted_proxies: ["10.0.0.0/33"] }).success).toBe(false);
    expect(VpsConfig.safeParse({ data_dir: "/x", trusted_proxies: ["proxy.local"] }).success).toBe(false);
    expect(VpsConfig.parse({ data_dir: "/x", webhook_allow_private: "false" }).webhook_allow_private).toBe(
      false,
    );
    expect(VpsConfig.parse({ data_dir: "/x", webhook_allow_private: "true" }).webhook_allow_private).toBe(
      true,
    );
  });

  test("the admin API refuses forwarded requests even from loopback", async () => {
    const res = await t.req("/admin/devices?user=x", {
      headers: { authorization: "Bearer admin-secret-token", "x-forwarded-for": "203.0.113.1" },
    });
    expect(res.status).toBe(403);
  });
});

describe("body limits", () => {
  const big = "x".repeat(100 * 1024);
  test("auth endpoints answer 413 in the OAuth shape, with or without Content-Length", async () => {
    const token = await t.req("/v1/auth/token", form({ grant_type: "refresh_token", refresh_token: big }));
    expect(token.status).toBe(413);
    expect(await token.json()).toMatchObject({ error: "invalid_request" });
    const chunks = new ReadableStream({
      start(ctrl) {
        for (let i = 0; i < 20; i++) ctrl.enqueue(new TextEncoder().encode("x".repeat(1024)));
        ctrl.close();
      },
    });
    const streamed = await t.req("/v1/auth/device", {
      method: "POST",
      headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
      body: chunks,
    });
    expect(streamed.status).toBe(413);
    expect(await streamed.json()).toMatchObject({ error: "invalid_request" });
  });

  test("other endpoints answer 413 problem+json", async () => {
    const s = await signIn(t, "limits");
    const cases: Array<[string, RequestInit]> = [
      ["/device", form({ user_code: "X", username: "u", password: big, action: "approve" })],
      [
        "/v1/webhooks",
        { method: "POST", headers: s.json, body: JSON.stringify({ url: `https://e.x/${big}` }) },
      ],
      ["/v1/search", { method: "POST", headers: s.json, body: JSON.stringify({ query: big }) }],
      ["/v1/graph/query", { method: "POST", headers: s.json, body: JSON.stringify({ entity: big }) }],
      ["/v1/ask", { method: "POST", headers: s.json, body: JSON.stringify({ question: big }) }],
      [
        "/admin/users",
        {
          method: "POST",
          headers: { authorization: "Bearer admin-secret-token", "content-type": "application/json" },
          body: JSON.stringify({ name: big }),
        },
      ],
    ];
    for (const [path, init] of cases) {
      const res = await t.req(path, init);
      expect([path, res.status]).toEqual([path, 413]);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(await res.json()).toMatchObject({ code: "payload_too_large" });
    }
  });
});

describe("429 on the token endpoint", () => {
  test("OAuth shape: slow_down for a device-code poll, invalid_request otherwise, with Retry-After", async () => {
    // Counters live in the database the test apps share: an address of this test's own.
    const a = await app({ rate_limit_per_min: 1 }, { clientIp: () => "192.0.2.32" });
    expect(
      (await a.req("/v1/auth/token", form({ grant_type: "refresh_token", refresh_token: "dnr_x" }))).status,
    ).toBe(400);
    const refresh = await a.req(
      "/v1/auth/token",
      form({ grant_type: "refresh_token", refresh_token: "dnr_x" }),
    );
    expect(refresh.status).toBe(429);
    expect(Number(refresh.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refresh.headers.get("content-type")).toContain("application/json");
    const body = (await refresh.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: "invalid_request" });
    expect(body.error_description).toContain("rate limit");
    const polled = await poll(a, "dnd_x");
    expect(polled.status).toBe(429);
    expect(await polled.json()).toMatchObject({ error: "slow_down" });
    const dev = await a.req("/v1/auth/device", form({ device_id: "d" }));
    expect(dev.status).toBe(429);
    expect(await dev.json()).toMatchObject({ error: "invalid_request" });
  });
});

describe("verification_uri", () => {
  test("never reflects the Host header: public_url, else the listening address", async () => {
    const listening = await app({}, { listenUrl: () => "http://192.0.2.10:8000" });
    const evil = await listening.app.request("http://evil.example/v1/auth/device", form({ device_id: "h" }));
    const d = DeviceAuthorizationResponse.parse(await evil.json());
    expect(d.verification_uri).toBe("http://192.0.2.10:8000/device");
    const configured = await app({ public_url: "https://vps.example/" });
    const e2 = await configured.app.request("http://evil.example/v1/auth/device", form({ device_id: "h" }));
    expect(DeviceAuthorizationResponse.parse(await e2.json()).verification_uri).toBe(
      "https://vps.example/device",
    );
  });
});

describe("NUL and invalid UTF-8", () => {
  test("NUL in ids, names and query text is a 400, not a 500", async () => {
    const s = await signIn(t, "nul-dev");
    const cases: Array<[string, RequestInit | undefined]> = [
      ["/v1/graph/query", { method: "POST", headers: s.json, body: JSON.stringify({ entity: "a\u0000b" }) }],
      ["/v1/search", { method: "POST", headers: s.json, body: JSON.stringify({ query: "a\u0000b" }) }],
      ["/v1/conflicts?memory_id=a%00b", { headers: s.auth }],
      ["/v1/devices/a%00b", { method: "DELETE", headers: s.auth }],
      ["/v1/webhooks/a%00b", { method: "DELETE", headers: s.auth }],
      [
        "/v1/webhooks",
        {
          method: "POST",
          headers: s.json,
          body: JSON.stringify({ url: "https://hooks.example/x", secret: "sixteen-chars-\u0000-long" }),
        },
      ],
    ];
    for (const [path, init] of cases) {
      const res = await t.req(path, init);
      expect([path, res.status]).toEqual([path, 400]);
      expect(await res.json()).toMatchObject({ code: "invalid_input" });
    }
    const named = await t.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        grant_type: API_KEY_GRANT,
        api_key: s.user.key,
        device_id: "n2",
        device_name: "a\u0000b",
      }),
    });
    expect(named.status).toBe(400);
    expect(await named.json()).toMatchObject({ error: "invalid_request" });
    const started = await t.req("/v1/auth/device", form({ device_id: "n3", device_name: "tv\u0000" }));
    expect(started.status).toBe(400);
    const d = await startCode(t);
    const page = await t.req(
      "/device",
      form({ user_code: d.user_code, username: "a\u0000b", password: "whatever-pw", action: "approve" }),
    );
    expect(page.status).toBe(401);
    const admin = await t.req("/admin/devices?user=a%00b", {
      headers: { authorization: "Bearer admin-secret-token" },
    });
    expect(admin.status).toBe(400);
  });

  test("a body that is not valid UTF-8 is refused with 400, not stored with replacement characters", async () => {
    const s = await signIn(t, "utf8-dev");
    const json = JSON.stringify({
      mutations: [
        {
          mutation_id: 1,
          op: "create",
          id: crypto.randomUUID(),
          hlc: `${String(Date.now()).padStart(18, "0")}-000000-utf8-dev`,
          base_hlc: null,
          data: {
            content: "caf@",
            kind: "episodic",
            tags: [],
            metadata: {},
            created_at: new Date().toISOString(),
            updated_at: new Date().toISOString(),
          },
        },
      ],
    });
    const bytes = new TextEncoder().encode(json);
    bytes[bytes.indexOf("@".charCodeAt(0))] = 0xff;
    const push = await t.req("/v1/sync/push", { method: "POST", headers: s.json, body: bytes });
    expect(push.status).toBe(400);
    expect(await push.json()).toMatchObject({
      code: "invalid_input",
      detail: "the request body is not valid UTF-8",
    });
    const pull = (await (await t.req("/v1/sync/pull", { headers: s.auth })).json()) as { changes: unknown[] };
    expect(pull.changes).toHaveLength(0);
    const search = await t.req("/v1/search", {
      method: "POST",
      headers: s.json,
      body: new Uint8Array([
        ...new TextEncoder().encode('{"query":"a'),
        0xc3,
        0x28,
        ...new TextEncoder().encode('"}'),
      ]),
    });
    expect(search.status).toBe(400);
    const token = await t.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=refresh_token&refresh_token=%FF%FE",
    });
    expect(token.status).toBe(400);
    expect(await token.json()).toMatchObject({
      error: "invalid_request",
      error_description: expect.stringContaining("UTF-8"),
    });
  });
});

describe("devices, per-user limits and API keys", () => {
  test("devices per user are capped; a revoked one frees its place", async () => {
    const a = await app({ max_devices_per_user: 2 });
    const first = await signIn(a, "cap-1");
    await signIn(a, "cap-2", first.user);
    const third = await a.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: first.user.key, device_id: "cap-3" }),
    });
    expect(third.status).toBe(400);
    const err = (await third.json()) as { error: string; error_description: string };
    expect(err.error).toBe("invalid_grant");
    expect(err.error_description).toContain("2 devices, the most allowed");
    // A device already known signs in again.
    await signIn(a, "cap-1", first.user);
    // The device flow says so on the approval page, before approving.
    const d = await startCode(a, "cap-tv");
    const page = await a.req(
      "/device",
      form({
        user_code: d.user_code,
        username: first.user.name,
        password: "correct horse battery",
        action: "approve",
      }),
    );
    expect(page.status).toBe(409);
    expect(await page.text()).toContain("the most allowed");
    expect(await (await poll(a, d.device_code)).json()).toMatchObject({ error: "authorization_pending" });
    expect((await a.req("/v1/devices/cap-2", { method: "DELETE", headers: first.auth })).status).toBe(200);
    await signIn(a, "cap-3", first.user);
  });

  test("requests are limited per user as well as per device", async () => {
    const a = await app({ rate_limit_per_min: 100, user_rate_limit_per_min: 3 });
    const one = await signIn(a, "pu-1");
    const two = await signIn(a, "pu-2", one.user);
    const statuses: number[] = [];
    for (const s of [one, two, one, two])
      statuses.push((await a.req("/v1/sync/pull", { headers: s.auth })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const other = await signIn(a, "pu-other");
    expect((await a.req("/v1/sync/pull", { headers: other.auth })).status).toBe(200);
  });

  test("API keys are listed (prefixes only) and revoked by id or prefix, through the admin API too", async () => {
    const name = await newUser(t);
    const k1 = await t.services.admin.createKey(name);
    const k2 = await t.services.admin.createKey(name);
    const admin = { authorization: "Bearer admin-secret-token", "content-type": "application/json" };
    const listed = (await (await t.req(`/admin/keys?user=${name}`, { headers: admin })).json()) as {
      keys: Array<{ id: string; prefix: string; revoked_at: string | null }>;
    };
    expect(listed.keys.map((k) => k.id)).toEqual([k1.id, k2.id]);
    expect(JSON.stringify(listed)).not.toContain(k1.key);
    const revoked = await t.req("/admin/keys/revoke", {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ user: name, key: k1.prefix }),
    });
    expect(revoked.status).toBe(200);
    expect(((await revoked.json()) as { revoked_at: string | null }).revoked_at).not.toBeNull();
    const exchange = (key: string) =>
      t.req("/v1/auth/token", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key, device_id: "k-dev" }),
      });
    expect(await (await exchange(k1.key)).json()).toMatchObject({ error: "invalid_grant" });
    expect((await exchange(k2.key)).status).toBe(200);
    await t.services.admin.revokeKey(name, k2.id);
    expect((await exchange(k2.key)).status).toBe(400);
    const other = await newUser(t);
    await expect(t.services.admin.revokeKey(other, k2.id)).rejects.toMatchObject({ code: "not_found" });
    const missing = await t.req("/admin/keys/revoke", {
      method: "POST",
      headers: admin,
      body: JSON.stringify({ user: name, key: "dny_nothing" }),
    });
    expect(missing.status).toBe(404);
  });

  test("revoking an API key signs out the devices signed in with it (through refreshes and splits), and no other", async () => {
    const name = await newUser(t);
    const leaked = await t.services.admin.createKey(name);
    const kept = await t.services.admin.createKey(name);
    const user = (k: { key: string }) => ({ name, key: k.key });
    const laptop = await signIn(t, `rk-laptop-${name}`, user(leaked));
    const phone = await signIn(t, `rk-phone-${name}`, user(leaked));
    const desk = await signIn(t, `rk-desk-${name}`, user(kept));
    const refreshForm = (token: string) => form({ grant_type: "refresh_token", refresh_token: token });
    // The phone refreshed before the revocation: its new tokens came from the same sign-in.
    const refreshed = await t.req("/v1/auth/token", refreshForm(phone.tokens.refresh_token));
    expect(refreshed.status).toBe(200);
    const phoneTokens = (await refreshed.json()) as { access_token: string; refresh_token: string };
    // The laptop's data dir was copied to a new machine, which split off as a device of its own
    // with the laptop's refresh token: that sign-in came from the leaked key as well.
    const split = await t.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        grant_type: DEVICE_SPLIT_GRANT,
        refresh_token: laptop.tokens.refresh_token,
        device_id: `rk-copy-${name}`,
      }),
    });
    expect(split.status).toBe(200);
    const copyTokens = (await split.json()) as { access_token: string; refresh_token: string };
    const pull = (access: string) =>
      t.req("/v1/sync/pull", { headers: { authorization: `Bearer ${access}` } });
    for (const access of [
      laptop.tokens.access_token,
      phoneTokens.access_token,
      copyTokens.access_token,
      desk.tokens.access_token,
    ])
      expect((await pull(access)).status).toBe(200);

    const revoked = await t.services.admin.revokeKey(name, leaked.id);
    expect(revoked.signed_out_devices).toEqual(
      [`rk-laptop-${name}`, `rk-phone-${name}`, `rk-copy-${name}`].sort(),
    );
    for (const access of [laptop.tokens.access_token, phoneTokens.access_token, copyTokens.access_token])
      expect((await pull(access)).status).toBe(401);
    for (const refresh of [laptop.tokens.refresh_token, phoneTokens.refresh_token, copyTokens.refresh_token])
      expect(await (await t.req("/v1/auth/token", refreshForm(refresh))).json()).toMatchObject({
        error: "invalid_grant",
      });
    // The device signed in with the other key goes on, and can still refresh.
    expect((await pull(desk.tokens.access_token)).status).toBe(200);
    expect((await t.req("/v1/auth/token", refreshForm(desk.tokens.refresh_token))).status).toBe(200);
    // Revoking again ends nothing more.
    expect((await t.services.admin.revokeKey(name, leaked.id)).signed_out_devices).toEqual([]);
    // A revoked laptop's owner signs it in again with the good key.
    expect((await signIn(t, `rk-laptop-${name}`, user(kept))).tokens.access_token).toBeTruthy();
  });
});
