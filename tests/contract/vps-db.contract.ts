/**
 * One contract for the VPS database layer (auth, devices, sync, conflict log, notifications), run
 * against real PostgreSQL and against embedded PGlite. Each test makes its own users, so the tests
 * share one database per backend (PGlite start-up takes seconds).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { sql } from "kysely";
import { DionysusError } from "../../src/core/errors.ts";
import { formatHlc, hlcMs } from "../../src/core/hlc.ts";
import { API_KEY_GRANT } from "../../src/core/protocol/auth.ts";
import { encodeCursor, PullResponse, PushResponse } from "../../src/core/protocol/sync.ts";
import { uuidv7 } from "../../src/core/uuid.ts";
import { createAuthService, type Principal } from "../../src/vps/auth/service.ts";
import { CHANGES_CHANNEL } from "../../src/vps/db/channel.ts";
import type { VpsDatabase } from "../../src/vps/db/database.ts";
import { migrateToLatest } from "../../src/vps/db/migrations.ts";
import { createBm25Search } from "../../src/vps/search/bm25.ts";
import { createSyncService } from "../../src/vps/sync/service.ts";
import { TestDevice } from "../helpers/memories.ts";
import { deviceHistoryTests, oauthError } from "./vps-device-history.contract.ts";
import { vpsFilterTests } from "./vps-filters.contract.ts";

export interface ContractBackend {
  vdb: VpsDatabase;
  close(): Promise<void>;
}

async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof DionysusError) return e.code;
    throw e;
  }
  throw new Error("expected a DionysusError");
}

export function vpsDbContract(label: string, open: () => Promise<ContractBackend>): void {
  describe(`VPS database contract: ${label}`, () => {
    let backend: ContractBackend;
    let vdb: VpsDatabase;
    let clock = Date.now();
    const now = () => clock;
    const authOpts = { access_token_ttl_s: 3600, refresh_token_ttl_s: 86400, now };
    const syncOpts = { max_content_bytes: 1000, max_clock_skew_ms: 60_000, now };
    let auth: ReturnType<typeof createAuthService>;
    let sync: ReturnType<typeof createSyncService>;

    beforeAll(async () => {
      backend = await open();
      vdb = backend.vdb;
      auth = createAuthService(vdb.db, authOpts);
      sync = createSyncService(vdb.db, syncOpts);
    });
    afterAll(async () => {
      await backend?.close();
    });
    // The server's clock stands still within a test (the tests move it by hand) but catches up
    // with the real one before each: the devices stamp their writes with the real clock, and after
    // a minute of earlier tests (a busy machine) a clock left at the file's start would take every
    // stamp for one from the future (max_clock_skew_ms) and refuse it.
    beforeEach(() => {
      clock = Math.max(clock, Date.now());
    });

    /** A new user with a signed-in device. */
    async function signedIn(deviceId = "dev-a") {
      const name = `u${crypto.randomUUID().slice(0, 8)}`;
      const user = await auth.createUser(name, "correct horse");
      const key = await auth.createApiKey(name);
      const tokens = await auth.tokenForApiKey(key.key, { device_id: deviceId, device_name: "Laptop" });
      const principal = (await auth.authenticate(tokens.access_token)) as Principal;
      return { user, key, tokens, principal, device: new TestDevice(deviceId) };
    }

    test("migrations are idempotent and the server has an epoch", async () => {
      expect(await migrateToLatest(vdb.db)).toEqual([]);
      const ep = await sync.getEpoch();
      expect(ep).toMatch(/^[a-f0-9]{16}$/);
    });

    test("users: created once, names validated, passwords checked with argon2id", async () => {
      const name = `u${crypto.randomUUID().slice(0, 8)}`;
      const u = await auth.createUser(name, "s3cret-password");
      expect(await errorCode(auth.createUser(name, "another-password"))).toBe("conflict");
      expect(await errorCode(auth.createUser("bad name!", "whatever-pw"))).toBe("invalid_input");
      expect(await errorCode(auth.createUser(`${name}x`, "short"))).toBe("invalid_input");
      expect(await auth.verifyPassword(name, "s3cret-password")).toEqual({ id: u.id, name });
      expect(await auth.verifyPassword(name, "wrong-password")).toBeUndefined();
      expect(await auth.verifyPassword("nobody-here", "s3cret-password")).toBeUndefined();
      const row = await vdb.db
        .selectFrom("users")
        .select("password_hash")
        .where("id", "=", u.id)
        .executeTakeFirst();
      expect(row?.password_hash).toStartWith("$argon2id$");
    });

    test("API key grant registers the device and issues tokens; secrets are stored hashed", async () => {
      const { user, key, tokens, principal } = await signedIn("laptop-1");
      expect(key.key).toMatch(/^dny_[A-Za-z0-9_-]{43}$/);
      expect(tokens).toMatchObject({
        token_type: "Bearer",
        expires_in: 3600,
        user_id: user.id,
        device_id: "laptop-1",
      });
      expect(principal).toEqual({ user_id: user.id, user_name: user.name, device_id: "laptop-1" });
      const devices = await auth.listDevices(user.id);
      expect(devices).toHaveLength(1);
      expect(devices[0]).toMatchObject({ device_id: "laptop-1", device_name: "Laptop", revoked_at: null });
      expect(devices[0]!.last_seen).not.toBeNull();
      const dump = JSON.stringify([
        await vdb.db.selectFrom("api_keys").selectAll().where("user_id", "=", user.id).execute(),
        await vdb.db.selectFrom("auth_tokens").selectAll().where("user_id", "=", user.id).execute(),
      ]);
      for (const secret of [key.key, tokens.access_token, tokens.refresh_token])
        expect(dump).not.toContain(secret);
      expect(await oauthError(auth.tokenForApiKey("dny_wrong", { device_id: "x" }))).toBe("invalid_grant");
      expect(API_KEY_GRANT).toContain("api_key");
    });

    test("access tokens expire; unknown tokens authenticate nobody", async () => {
      const { tokens } = await signedIn();
      expect(await auth.authenticate(tokens.access_token)).toBeDefined();
      expect(await auth.authenticate("dna_nonsense")).toBeUndefined();
      const saved = clock;
      clock += 3601_000;
      try {
        expect(await auth.authenticate(tokens.access_token)).toBeUndefined();
      } finally {
        clock = saved;
      }
    });

    test("refresh tokens rotate; reusing an old one revokes the whole family", async () => {
      const { tokens } = await signedIn();
      const second = await auth.refresh(tokens.refresh_token);
      expect(second.refresh_token).not.toBe(tokens.refresh_token);
      expect(await auth.authenticate(second.access_token)).toBeDefined();
      const third = await auth.refresh(second.refresh_token);
      expect(await oauthError(auth.refresh(second.refresh_token))).toBe("invalid_grant");
      // The replay means a leaked token: everything issued in this sign-in stops working.
      expect(await auth.authenticate(third.access_token)).toBeUndefined();
      expect(await oauthError(auth.refresh(third.refresh_token))).toBe("invalid_grant");
      expect(await oauthError(auth.refresh("dnr_unknown"))).toBe("invalid_grant");
    });

    test("a revoked device's tokens stop at once and it cannot push or sign in again", async () => {
      const { user, key, tokens, principal, device } = await signedIn("phone");
      const revoked = await auth.revokeDevice(user.id, "phone");
      expect(revoked.revoked_at).not.toBeNull();
      expect(await auth.authenticate(tokens.access_token)).toBeUndefined();
      expect(await oauthError(auth.refresh(tokens.refresh_token))).toBe("invalid_grant");
      expect(await oauthError(auth.tokenForApiKey(key.key, { device_id: "phone" }))).toBe("invalid_grant");
      expect(await errorCode(sync.push(principal, [device.create("x")]))).toBe("unauthorized");
      expect(await errorCode(auth.revokeDevice(user.id, "no-such-device"))).toBe("not_found");
      // Another device of the same user is unaffected.
      const other = await auth.tokenForApiKey(key.key, { device_id: "laptop" });
      expect(await auth.authenticate(other.access_token)).toBeDefined();
    });

    test("device authorization grant: pending, slow_down, approve, consumed", async () => {
      const name = `u${crypto.randomUUID().slice(0, 8)}`;
      const user = await auth.createUser(name, "correct horse");
      const start = await auth.startDeviceAuthorization(
        { device_id: "tablet", device_name: "Tablet", platform: "android" },
        "http://vps.test/device",
      );
      expect(start.user_code).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
      expect(start).toMatchObject({
        verification_uri: "http://vps.test/device",
        expires_in: 600,
        interval: 5,
      });
      expect(await oauthError(auth.pollDeviceCode(start.device_code))).toBe("authorization_pending");
      expect(await oauthError(auth.pollDeviceCode(start.device_code))).toBe("slow_down");
      clock += 6_000;
      // The interval grew to 10 s with the slow_down.
      expect(await oauthError(auth.pollDeviceCode(start.device_code))).toBe("slow_down");
      clock += 11_000;
      expect(await auth.pendingUserCode(start.user_code.toLowerCase().replace("-", " "))).toMatchObject({
        device_id: "tablet",
      });
      await auth.decideUserCode(start.user_code, "approve", user.id);
      const tokens = await auth.pollDeviceCode(start.device_code);
      expect(tokens).toMatchObject({ user_id: user.id, device_id: "tablet" });
      expect((await auth.listDevices(user.id))[0]).toMatchObject({
        device_name: "Tablet",
        platform: "android",
      });
      expect(await oauthError(auth.pollDeviceCode(start.device_code))).toBe("invalid_grant");
      expect(await errorCode(auth.decideUserCode(start.user_code, "approve", user.id))).toBe("not_found");
      expect(await oauthError(auth.pollDeviceCode("dnd_unknown"))).toBe("invalid_grant");
    });

    test("device authorization grant: access_denied and expired_token", async () => {
      const denied = await auth.startDeviceAuthorization({ device_id: "d1" }, "http://vps.test/device");
      await auth.decideUserCode(denied.user_code, "deny");
      expect(await oauthError(auth.pollDeviceCode(denied.device_code))).toBe("access_denied");
      const late = await auth.startDeviceAuthorization({ device_id: "d2" }, "http://vps.test/device");
      const saved = clock;
      clock += 601_000;
      try {
        expect(await oauthError(auth.pollDeviceCode(late.device_code))).toBe("expired_token");
        expect(await auth.pendingUserCode(late.user_code)).toBeUndefined();
      } finally {
        clock = saved;
      }
    });

    test("push applies in order; pull returns the changes; a replayed batch changes nothing", async () => {
      const { principal, device } = await signedIn();
      const batch = [
        device.create("first"),
        device.create("second", { tags: ["t"] }),
        device.create("third"),
      ];
      const r1 = await sync.push(principal, batch);
      expect(PushResponse.parse(r1.response).results.map((r) => r.status)).toEqual([
        "applied",
        "applied",
        "applied",
      ]);
      expect(r1.response.last_mutation_id).toBe(3);
      expect(r1.seq).toBe(3);
      const pulled = PullResponse.parse(await sync.pull(principal.user_id, { limit: 100 }));
      if (pulled.status !== "ok") throw new Error("expected ok");
      expect(pulled.changes.map((c) => [c.content, c.seq, c.origin_device])).toEqual([
        ["first", 1, "dev-a"],
        ["second", 2, "dev-a"],
        ["third", 3, "dev-a"],
      ]);
      expect(pulled.changes[1]!.tags).toEqual(["t"]);
      expect(pulled.up_to_date).toBe(true);
      const r2 = await sync.push(principal, batch);
      expect(r2.response.results.map((r) => r.status)).toEqual(["duplicate", "duplicate", "duplicate"]);
      expect(r2.seq).toBeUndefined();
      const again = await sync.pull(principal.user_id, { limit: 100 });
      expect(again).toMatchObject({ status: "ok", cursor: pulled.cursor });
    });

    test("a malformed mutation is rejected with its reason while the valid ones apply", async () => {
      const { principal, device } = await signedIn();
      const good1 = device.create("ok one");
      const badShape = { mutation_id: device.next++, op: "create", id: "not-a-uuid", hlc: "nope" };
      const empty = device.create("   ");
      const tooBig = device.create("x".repeat(1001));
      const nul = device.create("a\u0000b");
      const good2 = device.create("ok two");
      const r = await sync.push(principal, [good1, badShape, empty, tooBig, nul, good2, 42, null]);
      const results = r.response.results;
      expect(results.map((x) => x.status)).toEqual([
        "applied",
        "rejected",
        "rejected",
        "rejected",
        "rejected",
        "applied",
        "rejected",
        "rejected",
      ]);
      expect(results[1]).toMatchObject({ code: "invalid_input", retryable: false, mutation_id: 2 });
      expect(results[1]!.reason).toContain("id");
      expect(results[2]).toMatchObject({ code: "invalid_input", retryable: false });
      expect(results[3]).toMatchObject({ code: "payload_too_large", retryable: false });
      expect(results[4]!.reason).toContain("NUL");
      expect(results[6]).toMatchObject({ mutation_id: null, retryable: false });
      expect(r.response.last_mutation_id).toBe(6);
      const pulled = await sync.pull(principal.user_id, { limit: 100 });
      expect(pulled.status === "ok" && pulled.changes.map((c) => c.content)).toEqual(["ok one", "ok two"]);
    });

    test("last-write-wins by HLC with device-id tie-break; every lost version is in the conflict log", async () => {
      const a = await signedIn("dev-a");
      const bTokens = await auth.tokenForApiKey(a.key.key, { device_id: "dev-b" });
      const bPrincipal = (await auth.authenticate(bTokens.access_token)) as Principal;
      const b = new TestDevice("dev-b");
      const id = uuidv7();
      const ms = Date.now();
      const create = { ...a.device.create("v1", { id }), hlc: formatHlc({ ms, counter: 0, node: "dev-a" }) };
      expect((await sync.push(a.principal, [create])).response.results[0]!.status).toBe("applied");
      // Same ms and counter: the device id breaks the tie ("dev-b" > "dev-a").
      const bWins = b.update(id, "v2 from b", formatHlc({ ms: ms + 10, counter: 0, node: "dev-b" }));
      const aLoses = a.device.update(id, "v2 from a", formatHlc({ ms: ms + 10, counter: 0, node: "dev-a" }));
      // Each device's clock has seen its own stamp, so its later writes order after it however
      // fast this test runs.
      b.clock.receive(bWins.hlc);
      a.device.clock.receive(aLoses.hlc);
      expect((await sync.push(bPrincipal, [bWins])).response.results[0]!.status).toBe("applied");
      expect((await sync.push(a.principal, [aLoses])).response.results[0]!.status).toBe("stale");
      const pulled = await sync.pull(a.principal.user_id, { limit: 10 });
      if (pulled.status !== "ok") throw new Error("expected ok");
      expect(pulled.changes).toHaveLength(1);
      expect(pulled.changes[0]).toMatchObject({ content: "v2 from b", origin_device: "dev-b", seq: 2 });
      const log = await sync.conflicts(a.principal.user_id, { memory_id: id });
      expect(log).toHaveLength(2);
      // Newest first: a's losing update, then a's v1 overwritten by b.
      expect(log[0]).toMatchObject({ winner_hlc: bWins.hlc, loser_hlc: aLoses.hlc });
      expect(log[0]!.loser).toMatchObject({ content: "v2 from a", origin_device: "dev-a" });
      expect(log[1]).toMatchObject({ winner_hlc: bWins.hlc, loser_hlc: create.hlc });
      expect(log[1]!.loser).toMatchObject({ content: "v1" });
      // The conflict log travels with the feed, oldest first, each entry once.
      expect(pulled.conflicts.map((c) => c.loser_hlc)).toEqual([create.hlc, aLoses.hlc]);
      const again = await sync.pull(a.principal.user_id, { limit: 10, since: pulled.cursor });
      if (again.status !== "ok") throw new Error("expected ok");
      expect(again).toMatchObject({ changes: [], conflicts: [], up_to_date: true });
      // A device overwriting its own write is not a conflict.
      expect((await sync.push(bPrincipal, [b.update(id, "v3 from b")])).response.results[0]!.status).toBe(
        "applied",
      );
      expect(await sync.conflicts(a.principal.user_id, { memory_id: id })).toHaveLength(2);
    });

    for (const first of ["dev-a", "dev-b"])
      test(`equal ms and counter: the higher device id wins, whichever device pushes first (${first} first)`, async () => {
        const a = await signedIn("dev-a");
        const bTokens = await auth.tokenForApiKey(a.key.key, { device_id: "dev-b" });
        const bPrincipal = (await auth.authenticate(bTokens.access_token)) as Principal;
        const b = new TestDevice("dev-b");
        const create = a.device.create("v1");
        expect((await sync.push(a.principal, [create])).response.results[0]!.status).toBe("applied");
        const tie = { ms: hlcMs(create.hlc) + 5, counter: 3 };
        const low = a.device.update(create.id, "from a", formatHlc({ ...tie, node: "dev-a" }));
        const high = b.update(create.id, "from b", formatHlc({ ...tie, node: "dev-b" }));
        const pushes = {
          "dev-a": () => sync.push(a.principal, [low]),
          "dev-b": () => sync.push(bPrincipal, [high]),
        };
        const second = first === "dev-a" ? "dev-b" : "dev-a";
        const r1 = await pushes[first as "dev-a"]();
        const r2 = await pushes[second as "dev-a"]();
        expect(r1.response.results[0]!.status).toBe("applied");
        expect(r2.response.results[0]!.status).toBe(second === "dev-b" ? "applied" : "stale");
        const pulled = await sync.pull(a.principal.user_id, { limit: 10 });
        if (pulled.status !== "ok") throw new Error("expected ok");
        expect(pulled.changes.map((c) => [c.content, c.hlc, c.origin_device])).toEqual([
          ["from b", high.hlc, "dev-b"],
        ]);
        // The tie's loser is in the log either way.
        const log = await sync.conflicts(a.principal.user_id, { memory_id: create.id });
        expect(log.some((e) => e.winner_hlc === high.hlc && e.loser_hlc === low.hlc)).toBe(true);
      });

    test("deletes travel as tombstones, also for unknown ids, and win over older writes", async () => {
      const { principal, device } = await signedIn();
      const c = device.create("to be deleted", { tags: ["x"] });
      const del = device.delete(c.id);
      const older = device.update(c.id, "older edit", formatHlc({ ms: 1000, counter: 0, node: "dev-a" }));
      const ghost = device.delete(uuidv7());
      const r = await sync.push(principal, [c, del, older, ghost]);
      expect(r.response.results.map((x) => x.status)).toEqual(["applied", "applied", "stale", "applied"]);
      const pulled = await sync.pull(principal.user_id, { limit: 10 });
      if (pulled.status !== "ok") throw new Error("expected ok");
      expect(pulled.changes.map((x) => [x.id, x.deleted, x.content])).toEqual([
        [c.id, true, ""],
        [ghost.id, true, ""],
      ]);
      expect(pulled.changes[0]!.tags).toEqual([]);
    });

    test("a stamp far ahead of the server clock is refused, the batch stops there, and a re-stamp applies", async () => {
      const { principal, device } = await signedIn();
      const ok = device.create("fine");
      const future = {
        ...device.create("from the future"),
        hlc: formatHlc({ ms: clock + 3_600_000, counter: 0, node: "dev-a" }),
      };
      const after = device.create("after");
      const r = await sync.push(principal, [ok, future, after]);
      expect(r.response.results).toHaveLength(2);
      expect(r.response.results[1]).toMatchObject({
        status: "rejected",
        code: "clock_skew",
        retryable: true,
      });
      expect(r.response.last_mutation_id).toBe(ok.mutation_id);
      const restamped = { ...future, hlc: device.clock.tick() };
      const r2 = await sync.push(principal, [restamped, after]);
      expect(r2.response.results.map((x) => x.status)).toEqual(["applied", "applied"]);
      expect(r2.response.last_mutation_id).toBe(after.mutation_id);
    });

    test("pull pages through the feed in commit order until up_to_date, with no gap", async () => {
      const { principal, device } = await signedIn();
      for (let i = 0; i < 5; i++)
        await sync.push(
          principal,
          Array.from({ length: 5 }, (_, j) => device.create(`m${i * 5 + j}`)),
        );
      const seen: number[] = [];
      let since: string | undefined;
      let pages = 0;
      for (;;) {
        const page = await sync.pull(principal.user_id, { limit: 10, ...(since ? { since } : {}) });
        if (page.status !== "ok") throw new Error("expected ok");
        pages++;
        seen.push(...page.changes.map((c) => c.seq));
        since = page.cursor;
        if (page.up_to_date) break;
      }
      expect(pages).toBe(3);
      expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      const empty = await sync.pull(principal.user_id, { limit: 10, since });
      expect(empty).toMatchObject({ status: "ok", changes: [], up_to_date: true, cursor: since });
    });

    test("cursors: another epoch or a seq beyond the feed answers refetch; garbage is invalid", async () => {
      const { principal, device } = await signedIn();
      await sync.push(principal, [device.create("one")]);
      const ep = await sync.getEpoch();
      expect(
        await sync.pull(principal.user_id, { limit: 10, since: encodeCursor("otherepoch", 1) }),
      ).toMatchObject({
        status: "refetch",
      });
      expect(await sync.pull(principal.user_id, { limit: 10, since: encodeCursor(ep, 99) })).toMatchObject({
        status: "refetch",
      });
      expect(await errorCode(sync.pull(principal.user_id, { limit: 10, since: "garbage" }))).toBe(
        "invalid_input",
      );
    });

    test("users are isolated: B cannot read, overwrite, list or revoke A's data", async () => {
      const a = await signedIn("shared-id");
      const b = await signedIn("shared-id");
      const secret = a.device.create("A's secret");
      await sync.push(a.principal, [secret]);
      // B pushes to the same memory id with a newer stamp: it lands in B's own space only.
      const r = await sync.push(b.principal, [b.device.update(secret.id, "B's overwrite attempt")]);
      expect(r.response.results[0]!.status).toBe("applied");
      const aPull = await sync.pull(a.principal.user_id, { limit: 10 });
      const bPull = await sync.pull(b.principal.user_id, { limit: 10 });
      expect(aPull.status === "ok" && aPull.changes.map((c) => c.content)).toEqual(["A's secret"]);
      expect(bPull.status === "ok" && bPull.changes.map((c) => c.content)).toEqual(["B's overwrite attempt"]);
      expect(await sync.conflicts(b.principal.user_id)).toEqual([]);
      expect((await auth.listDevices(b.user.id)).map((d) => d.user_id)).toEqual([b.user.id]);
      await auth.revokeDevice(b.user.id, "shared-id");
      expect(await auth.authenticate(a.tokens.access_token)).toBeDefined();
    });

    test("users are isolated: B's conflict log never travels in A's pull", async () => {
      const b = await signedIn("dev-b1");
      const b2Tokens = await auth.tokenForApiKey(b.key.key, { device_id: "dev-b2" });
      const b2 = (await auth.authenticate(b2Tokens.access_token)) as Principal;
      const b2Device = new TestDevice("dev-b2");
      const a = await signedIn("dev-a");
      const note = b.device.create("B's bank PIN is 4711");
      await sync.push(b.principal, [note]);
      // B's second device overwrites it without having seen it, and an old edit loses: two entries.
      b2Device.clock.receive(note.hlc);
      expect(
        (await sync.push(b2, [b2Device.update(note.id, "B's PIN changed")])).response.results[0]!.status,
      ).toBe("applied");
      const stale = b.device.update(
        note.id,
        "B's stale PIN edit",
        formatHlc({ ms: 1000, counter: 0, node: "dev-b1" }),
      );
      expect((await sync.push(b.principal, [stale])).response.results[0]!.status).toBe("stale");
      const bPull = await sync.pull(b.principal.user_id, { limit: 100 });
      expect(bPull.status === "ok" && bPull.conflicts.map((c) => c.loser?.content)).toEqual([
        "B's bank PIN is 4711",
        "B's stale PIN edit",
      ]);

      await sync.push(a.principal, [a.device.create("A's own note")]);
      const aPull = await sync.pull(a.principal.user_id, { limit: 100 });
      if (aPull.status !== "ok") throw new Error("expected ok");
      expect(aPull.changes.map((c) => c.content)).toEqual(["A's own note"]);
      expect(aPull.conflicts).toEqual([]);
      expect(JSON.stringify(aPull)).not.toContain("PIN");
      expect(await sync.conflicts(a.principal.user_id)).toEqual([]);
    });

    test("identity baseline: live identity memories and the current cursor", async () => {
      const { principal, device } = await signedIn();
      const idm = device.create("I am a gardener", { kind: "identity" });
      const episode = device.create("just an episode");
      const gone = device.create("I live in Paris", { kind: "identity" });
      await sync.push(principal, [idm, episode, gone, device.delete(gone.id)]);
      const ident = await sync.identity(principal);
      expect(ident.user).toEqual({ id: principal.user_id, name: principal.user_name });
      expect(ident.device.device_id).toBe("dev-a");
      expect(ident.memories.map((m) => m.content)).toEqual(["I am a gardener"]);
      // Four mutations, three memories: a batch writes each memory once, so the feed is at 3.
      expect(ident.cursor).toBe(encodeCursor(await sync.getEpoch(), 3));
    });

    test("concurrent pushes from several devices get distinct, gapless sequence numbers", async () => {
      const a = await signedIn("dev-0");
      const devices = await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const t = await auth.tokenForApiKey(a.key.key, { device_id: `dev-${i}` });
          return { p: (await auth.authenticate(t.access_token)) as Principal, d: new TestDevice(`dev-${i}`) };
        }),
      );
      await Promise.all(devices.map(({ p, d }) => sync.push(p, [d.create("one"), d.create("two")])));
      const pulled = await sync.pull(a.principal.user_id, { limit: 100 });
      if (pulled.status !== "ok") throw new Error("expected ok");
      expect(pulled.changes.map((c) => c.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    });

    test("keyword search ranks by BM25: rare words outweigh common ones, deletes and other users stay out", async () => {
      const a = await signedIn();
      const b = await signedIn();
      const writes = [
        a.device.create("dog"),
        a.device.create("dog park"),
        a.device.create("the dog barked"),
        a.device.create("a dog and a cat"),
        a.device.create("I took the long way home after the pottery class on Monday evening"),
        a.device.create("dog and pottery: the dog broke the pottery"),
        a.device.create("pottery glaze notes"),
      ];
      await sync.push(a.principal, writes);
      await sync.push(a.principal, [a.device.delete(writes[6]!.id)]);
      await sync.push(b.principal, [b.device.create("pottery for user b")]);
      const search = createBm25Search(vdb.db);
      const ranked = await search(a.principal.user_id, "Where is the dog pottery?", 10);
      const contents = new Map(writes.map((w) => [w.id, w.data.content]));
      const got = ranked.map((h) => contents.get(h.id) ?? h.id);
      // Both words first; then the long memory with the rare word above every short one with the
      // common word (ts_rank, without idf, put "dog" first); the deleted memory and user b's are absent.
      expect(got[0]).toBe("dog and pottery: the dog broke the pottery");
      expect(got[1]).toBe("I took the long way home after the pottery class on Monday evening");
      expect(got.slice(2).sort()).toEqual(["a dog and a cat", "dog", "dog park", "the dog barked"]);
      expect(ranked.every((h, i) => i === 0 || h.score <= ranked[i - 1]!.score)).toBe(true);
      expect(ranked[2]!.score).toBeGreaterThan(ranked[5]!.score);
      // A shorter memory with the same words ranks higher (length normalisation).
      expect(got.indexOf("dog")).toBeLessThan(got.indexOf("a dog and a cat"));
      expect(await search(a.principal.user_id, "what is it?", 10)).toEqual([]);
      expect(await search(a.principal.user_id, "zebra", 10)).toEqual([]);
      // Counts are reused for a while, but a word that was in no memory is found once written.
      const zebra = a.device.create("a zebra at the zoo");
      await sync.push(a.principal, [zebra]);
      expect((await search(a.principal.user_id, "zebra", 10)).map((h) => h.id)).toEqual([zebra.id]);
      expect(await search(a.principal.user_id, "dog", 2)).toHaveLength(2);
    });

    test("keyword search weighs a word in half the memories or more at almost nothing (FTS5's idf), as the edge does", async () => {
      const a = await signedIn();
      const writes = [
        a.device.create("Caroline: hello there"),
        a.device.create("Caroline: the painting class"),
        a.device.create("Caroline: lunch at noon"),
        a.device.create("Caroline: see you soon"),
        a.device.create("Melanie: painting"),
      ];
      await sync.push(a.principal, writes);
      const ranked = await createBm25Search(vdb.db)(a.principal.user_id, "Caroline painting", 10);
      const contents = new Map(writes.map((w) => [w.id, w.data.content]));
      const got = ranked.map((h) => contents.get(h.id) ?? h.id);
      // "caroline" is in 4 of 5 memories: it no longer lifts Caroline's painting turn over the
      // shorter one without her name, nor her other turns to a share of the best score (with
      // ln(1 + …) it weighed ln 1.3 ≈ 0.25 there against painting's 0.88).
      expect(got[0]).toBe("Melanie: painting");
      expect(got[1]).toBe("Caroline: the painting class");
      expect(ranked).toHaveLength(5);
      for (const h of ranked.slice(2)) expect(h.score).toBeLessThan(ranked[0]!.score * 1e-4);
    });

    test("keyword search counts a word's occurrences as BM25 does (tf saturates by k1, not by ts_rank)", async () => {
      const a = await signedIn();
      const writes = [
        a.device.create("kiwi tea tea"),
        a.device.create("kiwi kiwi kiwi"),
        a.device.create("mango"),
        a.device.create("papaya"),
        a.device.create("guava"),
      ];
      await sync.push(a.principal, writes);
      const ranked = await createBm25Search(vdb.db)(a.principal.user_id, "kiwi", 10);
      expect(ranked.map((h) => h.id)).toEqual([writes[1]!.id, writes[0]!.id]);
      // Both are three words long (len = avglen): score = idf · tf·2.2 / (tf + 1.2), so three
      // occurrences score (3·2.2/4.2) / (2.2/2.2) = 1.571 times one (ts_rank's 1.36 gave 1.17).
      expect(ranked[0]!.score / ranked[1]!.score).toBeCloseTo((3 * 2.2) / 4.2, 4);
      // idf = ln((5 − 2 + ½) / (2 + ½)).
      expect(ranked[1]!.score).toBeCloseTo(Math.log(3.5 / 2.5), 4);
    });

    test("a committed push notifies listeners on the changes channel; a rolled-back one does not", async () => {
      const { principal, device } = await signedIn();
      const got: string[] = [];
      const stop = await vdb.listen(CHANGES_CHANNEL, (p) => got.push(p));
      try {
        await vdb.db
          .transaction()
          .execute(async (tx) => {
            await sql`select pg_notify(${CHANGES_CHANNEL}, 'rolled back')`.execute(tx);
            throw new Error("rollback");
          })
          .catch(() => {});
        await sync.push(principal, [device.create("poke me")]);
        for (let i = 0; i < 50 && got.length === 0; i++) await Bun.sleep(20);
        expect(got.map((p) => JSON.parse(p))).toEqual([
          { type: "changes", user_id: principal.user_id, seq: 1 },
        ]);
      } finally {
        await stop();
      }
    });

    deviceHistoryTests(() => vdb);
    vpsFilterTests(() => vdb);
  });
}
