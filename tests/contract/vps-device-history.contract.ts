/**
 * A device's history on the VPS: a `duplicate` answer only for the very same mutation, a reused
 * mutation number with other content refused as `device_diverged`, stamps tied to the device's
 * node, a server clock that steps back, and the device split grant. Runs inside the VPS database
 * contract (PostgreSQL and PGlite), on its database.
 */
import { beforeEach, expect, test } from "bun:test";
import { formatHlc, parseHlc } from "../../src/core/hlc.ts";
import { OAuthFailure } from "../../src/vps/auth/errors.ts";
import { createAuthService, type Principal } from "../../src/vps/auth/service.ts";
import type { VpsDatabase } from "../../src/vps/db/database.ts";
import { createSyncService, MUTATION_HISTORY } from "../../src/vps/sync/service.ts";
import { TestDevice } from "../helpers/memories.ts";

/** The OAuth error code a promise rejects with (fails the test if it resolves). */
export async function oauthError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OAuthFailure) return e.error;
    throw e;
  }
  throw new Error("expected an OAuth error");
}

export function deviceHistoryTests(db: () => VpsDatabase): void {
  let clock = Date.now();
  const now = () => clock;
  // The devices stamp with the wall clock: each test starts with the server's clock in step with
  // it (on a slow machine the tests may start more than the allowed skew after registration).
  beforeEach(() => {
    clock = Date.now();
  });
  const services = () => ({
    auth: createAuthService(db().db, { access_token_ttl_s: 3600, refresh_token_ttl_s: 86400, now }),
    sync: createSyncService(db().db, { max_content_bytes: 10_000, max_clock_skew_ms: 60_000, now }),
  });

  async function signedIn(deviceId: string) {
    const { auth } = services();
    const name = `h${crypto.randomUUID().slice(0, 8)}`;
    await auth.createUser(name, "correct horse");
    const key = await auth.createApiKey(name);
    const tokens = await auth.tokenForApiKey(key.key, { device_id: deviceId, device_name: "Laptop" });
    const principal = (await auth.authenticate(tokens.access_token)) as Principal;
    return { key, tokens, principal };
  }

  async function contents(userId: string): Promise<string[]> {
    const pulled = await services().sync.pull(userId, { limit: 1000 });
    if (pulled.status !== "ok") throw new Error("expected ok");
    return pulled.changes.map((c) => c.content).sort();
  }

  test("a resend of the same mutation is a duplicate; the same number with other content is device_diverged", async () => {
    const { sync } = services();
    const { principal } = await signedIn("hist-a");
    const original = new TestDevice("hist-a");
    const m1 = original.create("one");
    const m2 = original.create("two");
    expect((await sync.push(principal, [m1, m2])).response.results.map((r) => r.status)).toEqual([
      "applied",
      "applied",
    ]);
    // The answer was lost; the device sends the same batch again.
    const again = await sync.push(principal, [m1, m2]);
    expect(again.response.results.map((r) => r.status)).toEqual(["duplicate", "duplicate"]);

    // A restored copy numbers its new writes from its old counter: 2 is taken by "two".
    const restored = new TestDevice("hist-a");
    restored.next = 2;
    const r = await sync.push(principal, [restored.create("three (restored copy)"), restored.create("four")]);
    expect(r.response.results).toHaveLength(1);
    expect(r.response.results[0]).toMatchObject({
      status: "rejected",
      code: "device_diverged",
      retryable: true,
      mutation_id: 2,
    });
    expect(r.response.last_mutation_id).toBe(2);
    expect(await contents(principal.user_id)).toEqual(["one", "two"]);
  });

  test("a number older than the kept history that comes again is taken as diverged, never as a duplicate", async () => {
    const { sync } = services();
    const { principal } = await signedIn("hist-old");
    const dev = new TestDevice("hist-old");
    await sync.push(principal, [dev.create("first")]);
    // Jump the device's counter past the window: mutation 1's digest is pruned.
    dev.next = MUTATION_HISTORY + 5;
    await sync.push(principal, [dev.create("far later")]);
    const copy = new TestDevice("hist-old");
    const r = await sync.push(principal, [copy.create("copy's first")]);
    expect(r.response.results[0]).toMatchObject({ status: "rejected", code: "device_diverged" });
  });

  test("a malformed mutation with a huge number does not move the device's last mutation", async () => {
    const { sync } = services();
    const { principal } = await signedIn("hist-bad");
    const dev = new TestDevice("hist-bad");
    const bad = { mutation_id: 9_000_000, op: "create", id: "not-a-uuid" };
    const r = await sync.push(principal, [bad]);
    expect(r.response.results[0]).toMatchObject({ status: "rejected", retryable: false });
    expect(r.response.last_mutation_id).toBe(0);
    const next = await sync.push(principal, [dev.create("still arrives")]);
    expect(next.response.results[0]!.status).toBe("applied");
    expect(await contents(principal.user_id)).toEqual(["still arrives"]);
  });

  test("a stamp of another node is refused as hlc_node and the batch stops there", async () => {
    const { sync } = services();
    const { principal } = await signedIn("hist-node");
    const dev = new TestDevice("hist-node");
    const mine = dev.create("mine");
    const foreign = { ...dev.create("pretends to be another device") };
    foreign.hlc = formatHlc({ ...parseHlc(foreign.hlc)!, node: "someone-else" });
    const r = await sync.push(principal, [mine, foreign, dev.create("after")]);
    expect(r.response.results.map((x) => x.status)).toEqual(["applied", "rejected"]);
    expect(r.response.results[1]).toMatchObject({ code: "hlc_node", retryable: true });
    expect(await contents(principal.user_id)).toEqual(["mine"]);
  });

  test("a server clock that steps back still takes writes in step with what it accepted before", async () => {
    const { sync } = services();
    const { principal } = await signedIn("hist-clock-a");
    const t = clock;
    const a = new TestDevice("hist-clock-a", () => t);
    const first = a.create("written while the VPS clock was right");
    expect((await sync.push(principal, [first])).response.results[0]!.status).toBe("applied");
    // The VPS restarts ten minutes slow. Another device, whose clock is right, edits the memory.
    clock = t - 600_000;
    try {
      const { auth } = services();
      const { principal: pb } = await (async () => {
        const tokens = await auth.tokenForApiKey((await auth.createApiKey(principal.user_name)).key, {
          device_id: "hist-clock-b",
        });
        return { principal: (await auth.authenticate(tokens.access_token)) as Principal };
      })();
      const b = new TestDevice("hist-clock-b", () => t + 1000);
      const edit = { ...b.update(first.id, "edited on B"), base_hlc: first.hlc };
      const r = await sync.push(pb, [edit]);
      expect(r.response.results[0]!.status).toBe("applied");
      expect(await contents(principal.user_id)).toEqual(["edited on B"]);
      // Far beyond what the VPS has seen is still refused.
      const far = new TestDevice("hist-clock-b", () => t + 3_600_000);
      far.next = b.next;
      const r2 = await sync.push(pb, [far.create("an hour ahead of everything")]);
      expect(r2.response.results[0]).toMatchObject({ status: "rejected", code: "clock_skew" });
    } finally {
      clock = Date.now();
    }
  });

  test("a stale write is answered with the version that won", async () => {
    const { sync } = services();
    const { principal } = await signedIn("hist-stale");
    const t = Date.now();
    const dev = new TestDevice("hist-stale", () => t);
    const m = dev.create("base");
    const newer = dev.update(m.id, "newer", formatHlc({ ms: t + 10, counter: 0, node: "hist-stale" }));
    // A stamp between the create's and newer's: it loses to newer.
    const older = dev.update(m.id, "older", formatHlc({ ms: t + 5, counter: 0, node: "hist-stale" }));
    const r = await sync.push(principal, [m, newer, older]);
    expect(r.response.results.map((x) => x.status)).toEqual(["applied", "applied", "stale"]);
    expect(r.response.results[2]!.current).toMatchObject({ id: m.id, content: "newer", hlc: newer.hlc });
  });

  test("split grant: a copy gets its own device and tokens; the original's token keeps working", async () => {
    const { auth } = services();
    const { tokens, principal } = await signedIn("hist-orig");
    const split = await auth.splitDevice(tokens.refresh_token, { device_id: "hist-copy" });
    expect(split).toMatchObject({ user_id: principal.user_id, device_id: "hist-copy" });
    expect((await auth.authenticate(split.access_token))?.device_id).toBe("hist-copy");
    const devices = await auth.listDevices(principal.user_id);
    expect(devices.find((d) => d.device_id === "hist-copy")?.device_name).toBe("Laptop (copy)");
    // The presented token was not rotated: the original refreshes as usual.
    const rotated = await auth.refresh(tokens.refresh_token);
    expect((await auth.authenticate(rotated.access_token))?.device_id).toBe("hist-orig");
    // An already rotated token (a restored backup's) is refused, and nothing is revoked.
    expect(await oauthError(auth.splitDevice(tokens.refresh_token, { device_id: "hist-copy-2" }))).toBe(
      "invalid_grant",
    );
    expect(await auth.authenticate(rotated.access_token)).toBeDefined();
    expect(await auth.authenticate(split.access_token)).toBeDefined();
    // An id that exists already is refused.
    expect(await oauthError(auth.splitDevice(rotated.refresh_token, { device_id: "hist-copy" }))).toBe(
      "invalid_request",
    );
  });
}
