/**
 * The VPS page in process (tests/e2e/vps-status-page.test.ts drives it in chromium): sign-in and
 * its failure budget, the session cookie, that a user sees and revokes only their own devices,
 * the CSRF check, sign-out, and that device names cannot inject markup.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { VPS_PAGE_CSP } from "../../src/vps/http/pages/routes.tsx";
import { makeTestApp, openTestBackend, signIn, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;
const ORIGIN = "http://vps.test";

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend);
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
});

const form = (path: string, body: Record<string, string>, headers: Record<string, string> = {}) =>
  t.req(path, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: ORIGIN, ...headers },
    body: new URLSearchParams(body).toString(),
  });
const cookieOf = (res: Response) =>
  /dionysus_vps_session=([^;]*)/.exec(res.headers.get("set-cookie") ?? "")?.[1];

describe("the VPS page", () => {
  test("signed out: the sign-in form, with the page's headers", async () => {
    const res = await t.req("/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-security-policy")).toBe(VPS_PAGE_CSP);
    expect(await res.text()).toContain('action="/signin"');
  });

  test("sign-in: a wrong password is a 401 page; the right one sets the cookie and shows only the user's devices", async () => {
    const ana = await signIn(t, "dev-ana");
    const bob = await signIn(t, "dev-bob");
    const wrong = await form("/signin", { username: ana.user.name, password: "nope" });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain("Wrong user name or password");
    expect(wrong.headers.get("set-cookie")).toBeNull();

    const ok = await form("/signin", { username: ana.user.name, password: "correct horse battery" });
    expect(ok.status).toBe(303);
    const setCookie = ok.headers.get("set-cookie")!;
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Strict");
    const cookie = `dionysus_vps_session=${cookieOf(ok)}`;
    const html = await (await t.req("/", { headers: { cookie } })).text();
    expect(html).toContain(ana.user.name);
    expect(html).toContain("dev-ana");
    expect(html).not.toContain("dev-bob");

    // Bob's device cannot be revoked from Ana's session; a post without this site's Origin is refused.
    expect((await form("/devices/dev-bob/revoke", {}, { cookie })).status).toBe(404);
    expect(
      (await form("/devices/dev-ana/revoke", {}, { cookie, origin: "http://evil.example" })).status,
    ).toBe(403);
    const noOrigin = await t.req("/devices/dev-ana/revoke", { method: "POST", headers: { cookie } });
    expect(noOrigin.status).toBe(403);
    expect((await form("/devices/dev-ana/revoke", {})).status).toBe(401);
    const revoked = await form("/devices/dev-ana/revoke", {}, { cookie });
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get("location")).toBe("/?revoked=dev-ana");
    const devices = await t.services.auth.listDevices(
      (await t.services.auth.verifyPassword(ana.user.name, "correct horse battery"))!.id,
    );
    expect(devices.find((d) => d.device_id === "dev-ana")?.revoked_at).not.toBeNull();
    const bobs = await t.services.auth.listDevices(
      (await t.services.auth.verifyPassword(bob.user.name, "correct horse battery"))!.id,
    );
    expect(bobs.find((d) => d.device_id === "dev-bob")?.revoked_at).toBeNull();

    // Sign-out ends the session on the server, not just in the browser.
    const out = await form("/signout", {}, { cookie });
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect(await (await t.req("/", { headers: { cookie } })).text()).toContain('action="/signin"');
  });

  test("a device name cannot inject markup into the page", async () => {
    const eve = await signIn(t, "dev-eve");
    await backend.database.db
      .updateTable("devices")
      .set({ device_name: '<img src=x onerror="alert(1)">' })
      .where("device_id", "=", "dev-eve")
      .execute();
    const ok = await form("/signin", { username: eve.user.name, password: "correct horse battery" });
    const html = await (
      await t.req("/", { headers: { cookie: `dionysus_vps_session=${cookieOf(ok)}` } })
    ).text();
    expect(html).toContain("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
    expect(html).not.toContain("<img");
  });

  test("failed sign-ins are budgeted per name and address (429 with Retry-After)", async () => {
    const name = "nobody-here";
    for (let i = 0; i < 5; i++)
      expect((await form("/signin", { username: name, password: "guess" })).status).toBe(401);
    const limited = await form("/signin", { username: name, password: "guess" });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  test("failed sign-ins on /device and on the page draw on one budget (two forms never double the guesses)", async () => {
    const name = "guessed-on-both";
    const start = await t.req("/v1/auth/device", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ device_id: "budget-tv" }).toString(),
    });
    const { user_code } = (await start.json()) as { user_code: string };
    for (let i = 0; i < 3; i++)
      expect(
        (await form("/device", { user_code, username: name, password: "guess", action: "approve" })).status,
      ).toBe(401);
    for (let i = 0; i < 2; i++)
      expect((await form("/signin", { username: name, password: "guess" })).status).toBe(401);
    expect((await form("/signin", { username: name, password: "guess" })).status).toBe(429);
  });
});
