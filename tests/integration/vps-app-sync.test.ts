/** The VPS HTTP API in-process (app.request): push, pull, identity, events, webhooks, isolation. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { WEBHOOK_SIGNATURE_HEADER } from "../../src/core/protocol/auth.ts";
import { ChangesEvent, PullResponse, PushResponse } from "../../src/core/protocol/sync.ts";
import { verifyWebhookSignature } from "../../src/vps/push/webhooks.ts";
import { TestDevice } from "../helpers/memories.ts";
import {
  makeTestApp,
  openTestBackend,
  readSse,
  signIn,
  type TestApp,
  type TestBackend,
} from "../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;

beforeAll(async () => {
  backend = await openTestBackend();
  // The webhook receivers below listen on loopback.
  t = await makeTestApp(backend, { webhook_allow_private: true }, { webhookRetryDelaysMs: [50, 100] });
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
});

type Session = Awaited<ReturnType<typeof signIn>>;

async function push(s: Session, mutations: unknown[]) {
  const res = await t.req("/v1/sync/push", {
    method: "POST",
    headers: s.json,
    body: JSON.stringify({ mutations }),
  });
  return { status: res.status, body: (await res.json()) as unknown };
}

async function pullAll(s: Session) {
  const res = await t.req("/v1/sync/pull?limit=1000", { headers: s.auth });
  const body = PullResponse.parse(await res.json());
  if (body.status !== "ok") throw new Error("expected ok");
  return body;
}

describe("push and pull over HTTP", () => {
  test("push → applied; pull pages; replay → duplicate; invalid ones rejected while the rest apply", async () => {
    const s = await signIn(t);
    const dev = new TestDevice("dev-a");
    const batch = [dev.create("one"), { mutation_id: dev.next++, op: "explode" }, dev.create("two")];
    const r = await push(s, batch);
    expect(r.status).toBe(200);
    const body = PushResponse.parse(r.body);
    expect(body.results.map((x) => x.status)).toEqual(["applied", "rejected", "applied"]);
    expect(body.results[1]).toMatchObject({ code: "invalid_input", retryable: false });
    expect(body.last_mutation_id).toBe(3);
    expect(Math.abs(body.server_time - Date.now())).toBeLessThan(60_000);
    const replay = PushResponse.parse((await push(s, batch)).body);
    expect(replay.results.map((x) => x.status)).toEqual(["duplicate", "rejected", "duplicate"]);
    const page1 = await t.req("/v1/sync/pull?limit=1", { headers: s.auth });
    const p1 = PullResponse.parse(await page1.json());
    expect(p1).toMatchObject({ status: "ok", up_to_date: false });
    if (p1.status !== "ok") return;
    const p2 = PullResponse.parse(
      await (
        await t.req(`/v1/sync/pull?limit=1&since=${encodeURIComponent(p1.cursor)}`, { headers: s.auth })
      ).json(),
    );
    expect(p2).toMatchObject({ status: "ok", up_to_date: true });
    expect(p2.status === "ok" && p2.changes.map((c) => c.content)).toEqual(["two"]);
  });

  test("bad input: 413 for too many mutations or bytes, 400 for a malformed envelope or query", async () => {
    const s = await signIn(t);
    const dev = new TestDevice("dev-a");
    const tooMany = await push(
      s,
      Array.from({ length: 1001 }, () => ({ mutation_id: 1 })),
    );
    expect(tooMany.status).toBe(413);
    expect(tooMany.body).toMatchObject({ code: "payload_too_large" });
    const huge = JSON.stringify({ mutations: [dev.create("x".repeat(5 * 1024 * 1024))] });
    const big = await t.req("/v1/sync/push", { method: "POST", headers: s.json, body: huge });
    expect(big.status).toBe(413);
    const notJson = await t.req("/v1/sync/push", { method: "POST", headers: s.json, body: "{nope" });
    expect(notJson.status).toBe(400);
    expect(await notJson.json()).toMatchObject({ code: "invalid_input" });
    expect((await push(s, [])).status).toBe(400);
    const noArray = await t.req("/v1/sync/push", {
      method: "POST",
      headers: s.json,
      body: JSON.stringify({ mutations: "x" }),
    });
    expect(noArray.status).toBe(400);
    expect((await t.req("/v1/sync/pull?since=garbage", { headers: s.auth })).status).toBe(400);
    expect((await t.req("/v1/sync/pull?limit=0", { headers: s.auth })).status).toBe(400);
    expect((await t.req("/v1/sync/pull?limit=abc", { headers: s.auth })).status).toBe(400);
    // Nothing of the above was stored.
    expect((await pullAll(s)).changes).toEqual([]);
  });

  test("a cursor from another epoch answers refetch", async () => {
    const s = await signIn(t);
    const res = await t.req("/v1/sync/pull?since=otherepoch.5", { headers: s.auth });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "refetch" });
  });

  test("identity baseline and conflict log endpoints", async () => {
    const s = await signIn(t);
    const dev = new TestDevice("dev-a");
    const idm = dev.create("My name is Ada", { kind: "identity" });
    await push(s, [idm, dev.create("lunch was good")]);
    const ident = (await (await t.req("/v1/identity", { headers: s.auth })).json()) as {
      memories: Array<{ content: string }>;
      cursor: string;
    };
    expect(ident.memories.map((m) => m.content)).toEqual(["My name is Ada"]);
    expect(ident.cursor).toEndWith(".2");
    const stale = { ...dev.update(idm.id, "older"), hlc: "000000000001000-000000-dev-a" };
    expect(PushResponse.parse((await push(s, [stale])).body).results[0]!.status).toBe("stale");
    const log = (await (await t.req(`/v1/conflicts?memory_id=${idm.id}`, { headers: s.auth })).json()) as {
      conflicts: Array<{ loser_hlc: string }>;
    };
    expect(log.conflicts.map((c) => c.loser_hlc)).toEqual([stale.hlc]);
  });
});

describe("user isolation through every endpoint", () => {
  test("A can neither read, change, list, revoke nor be poked about B's memories", async () => {
    const a = await signIn(t, "dev-a");
    const b = await signIn(t, "dev-b");
    const aDev = new TestDevice("dev-a");
    const bDev = new TestDevice("dev-b");
    const bSecret = bDev.create("B's diary");
    await push(b, [bSecret]);

    const events = await t.req("/v1/events?last_event_id=0", { headers: a.auth });
    expect(events.status).toBe(200);
    const aStream = readSse(events, 5, 800);

    // A writes to B's memory id: it becomes A's own memory; B's is untouched.
    const attack = await push(a, [aDev.update(bSecret.id, "A was here"), aDev.delete(bSecret.id)]);
    expect(PushResponse.parse(attack.body).results.map((x) => x.status)).toEqual(["applied", "applied"]);
    // B's feed moves well past A's (A's two writes of one memory take one seq).
    await push(b, [bDev.create("B writes more"), bDev.create("and more"), bDev.create("and more still")]);
    const got = await aStream;
    // A is poked about its own write (seq 1 of A's feed), never about B's (seq 2..5 of B's).
    expect(got.events.length).toBeGreaterThan(0);
    for (const e of got.events) expect(ChangesEvent.parse(JSON.parse(e.data!)).seq).toBe(1);

    const bPull = await pullAll(b);
    expect(bPull.changes.map((c) => [c.content, c.deleted])).toEqual([
      ["B's diary", false],
      ["B writes more", false],
      ["and more", false],
      ["and more still", false],
    ]);
    const aPull = await pullAll(a);
    expect(aPull.changes.map((c) => c.content)).toEqual([""]);
    expect(JSON.stringify(aPull)).not.toContain("diary");
    const aIdent = await (await t.req("/v1/identity", { headers: a.auth })).text();
    expect(aIdent).not.toContain("diary");
    const aConflicts = await (
      await t.req(`/v1/conflicts?memory_id=${bSecret.id}`, { headers: a.auth })
    ).text();
    expect(aConflicts).not.toContain("diary");
    const aDevices = await (await t.req("/v1/devices", { headers: a.auth })).text();
    expect(aDevices).not.toContain("dev-b");
    expect((await t.req("/v1/devices/dev-b", { method: "DELETE", headers: a.auth })).status).toBe(404);
    expect((await t.req("/v1/sync/pull", { headers: b.auth })).status).toBe(200);
    const aHooks = await (await t.req("/v1/webhooks", { headers: a.auth })).json();
    expect(aHooks).toEqual({ webhooks: [] });
  });
});

describe("conflict log isolation", () => {
  test("B's conflicts never travel in A's pull", async () => {
    const b1 = await signIn(t, "dev-b1");
    const b2 = await signIn(t, "dev-b2", b1.user);
    const a = await signIn(t, "dev-a");
    const bDev1 = new TestDevice("dev-b1");
    const bDev2 = new TestDevice("dev-b2");
    const note = bDev1.create("B's bank PIN is 4711");
    await push(b1, [note]);
    // B's second device overwrites it without having seen it, and an old edit loses: two entries.
    bDev2.clock.receive(note.hlc);
    const overwrite = bDev2.update(note.id, "B's bank PIN changed");
    expect(PushResponse.parse((await push(b2, [overwrite])).body).results[0]!.status).toBe("applied");
    const stale = { ...bDev1.update(note.id, "B's stale PIN edit"), hlc: "000000000001000-000000-dev-b1" };
    expect(PushResponse.parse((await push(b1, [stale])).body).results[0]!.status).toBe("stale");
    const bPull = await pullAll(b1);
    expect(bPull.conflicts.map((c) => c.loser?.content)).toEqual([
      "B's bank PIN is 4711",
      "B's stale PIN edit",
    ]);

    await push(a, [new TestDevice("dev-a").create("A's own note")]);
    const aPull = await pullAll(a);
    expect(aPull.changes.map((c) => c.content)).toEqual(["A's own note"]);
    expect(aPull.conflicts).toEqual([]);
    expect(JSON.stringify(aPull)).not.toContain("PIN");
    const aLog = await (await t.req("/v1/conflicts", { headers: a.auth })).json();
    expect(aLog).toEqual({ conflicts: [] });
  });
});

describe("events (SSE)", () => {
  test("a push pokes the user's open streams with the latest seq; Last-Event-ID resumes", async () => {
    const s = await signIn(t, "dev-a");
    const other = await signIn(t, "dev-b", s.user);
    const dev = new TestDevice("dev-b");
    const res = await t.req("/v1/events", { headers: s.auth });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reading = readSse(res, 1);
    await Bun.sleep(20);
    await push(other, [dev.create("hello"), dev.create("world")]);
    const { events } = await reading;
    expect(events).toHaveLength(1);
    expect(events[0]!.event).toBe("changes");
    expect(events[0]!.id).toBe("2");
    expect(ChangesEvent.parse(JSON.parse(events[0]!.data!)).seq).toBe(2);

    const resumed = await t.req("/v1/events", { headers: { ...s.auth, "last-event-id": "1" } });
    const r2 = await readSse(resumed, 1);
    expect(r2.events.map((e) => e.id)).toEqual(["2"]);
    const upToDate = await t.req("/v1/events", { headers: { ...s.auth, "last-event-id": "2" } });
    const r3 = await readSse(upToDate, 1, 300);
    expect(r3.events).toEqual([]);
    expect(r3.raw).toContain(": connected");
    expect((await t.req("/v1/events", { headers: { ...s.auth, "last-event-id": "x" } })).status).toBe(400);
  });

  test("after a burst of pushes the stream ends on the newest seq", async () => {
    const s = await signIn(t, "dev-a");
    const other = await signIn(t, "dev-b", s.user);
    const dev = new TestDevice("dev-b");
    const res = await t.req("/v1/events", { headers: s.auth });
    const reading = readSse(res, 10, 10_000, (e) => e.id === "10");
    await Bun.sleep(20);
    for (let i = 0; i < 10; i++) await push(other, [dev.create(`m${i}`)]);
    const { events } = await reading;
    // Coalescing may merge pokes (unit-tested in push-hub.test.ts); the newest seq always arrives.
    expect(events.length).toBeLessThanOrEqual(10);
    expect(events.at(-1)!.id).toBe("10");
    const ids = events.map((e) => Number(e.id));
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
  });

  test("a quiet stream carries heartbeat comments", async () => {
    const quick = await makeTestApp(backend, {}, { heartbeatS: 0.05 });
    try {
      const s = await signIn(quick, "dev-hb");
      const res = await quick.req("/v1/events", { headers: s.auth });
      const reader = res.body!.getReader();
      let raw = "";
      const deadline = Date.now() + 10_000;
      while (!raw.includes(": heartbeat") && Date.now() < deadline) {
        const r = await Promise.race([reader.read(), Bun.sleep(200).then(() => undefined)]);
        if (r?.value) raw += new TextDecoder().decode(r.value);
        if (r?.done) break;
      }
      await reader.cancel();
      expect(raw).toContain(": connected");
      expect(raw).toContain(": heartbeat");
    } finally {
      await quick.stop();
    }
  });

  test("revoking a device closes its open stream", async () => {
    const s = await signIn(t, "dev-a");
    const other = await signIn(t, "dev-b", s.user);
    const res = await t.req("/v1/events", { headers: s.auth });
    const reader = res.body!.getReader();
    await reader.read();
    expect(t.services.hub.connections).toBeGreaterThan(0);
    const before = t.services.hub.connections;
    await t.req("/v1/devices/dev-a", { method: "DELETE", headers: other.auth });
    let done = false;
    const deadline = Date.now() + 10_000;
    while (!done && Date.now() < deadline) {
      const r = await Promise.race([reader.read(), Bun.sleep(100).then(() => undefined)]);
      if (r?.done) done = true;
    }
    expect(done).toBe(true);
    expect(t.services.hub.connections).toBe(before - 1);
  });
});

describe("webhooks", () => {
  test("fire for the VPS's own writes to the feed too (a memory's new vector)", async () => {
    const bodies: string[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        bodies.push(await req.text());
        return new Response("ok");
      },
    });
    try {
      const s = await signIn(t, "dev-hook-worker");
      const reg = await t.req("/v1/webhooks", {
        method: "POST",
        headers: s.json,
        body: JSON.stringify({ url: `http://127.0.0.1:${receiver.port}/hook` }),
      });
      expect(reg.status).toBe(201);
      await push(s, [new TestDevice("dev-hook-worker").create("a memory to embed")]);
      const seqOf = (b: string) => ChangesEvent.parse(JSON.parse(b)).seq;
      const deadline = Date.now() + 10_000;
      while (bodies.length === 0 && Date.now() < deadline) await Bun.sleep(20);
      const afterPush = Math.max(...bodies.map(seqOf));
      // The worker stores the vector under a new feed position: a second delivery carries it.
      expect(await t.services.heavy.worker.drain()).toBeGreaterThan(0);
      while (!bodies.some((b) => seqOf(b) > afterPush) && Date.now() < deadline) await Bun.sleep(20);
      expect(Math.max(...bodies.map(seqOf))).toBe(afterPush + 1);
    } finally {
      receiver.stop(true);
    }
  });

  test("registered, signed with HMAC-SHA256, retried after a failure, listed and deleted", async () => {
    const received: Array<{ body: string; sig: string }> = [];
    let failFirst = true;
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        const body = await req.text();
        if (failFirst) {
          failFirst = false;
          return new Response("try later", { status: 503 });
        }
        received.push({ body, sig: req.headers.get(WEBHOOK_SIGNATURE_HEADER) ?? "" });
        return new Response("ok");
      },
    });
    try {
      const s = await signIn(t, "dev-a");
      const reg = await t.req("/v1/webhooks", {
        method: "POST",
        headers: s.json,
        body: JSON.stringify({ url: `http://127.0.0.1:${receiver.port}/hook` }),
      });
      expect(reg.status).toBe(201);
      const hook = (await reg.json()) as { id: string; secret: string };
      expect(hook.secret.length).toBeGreaterThanOrEqual(32);
      const list = (await (await t.req("/v1/webhooks", { headers: s.auth })).json()) as {
        webhooks: Array<Record<string, unknown>>;
      };
      expect(list.webhooks.map((w) => w.id)).toEqual([hook.id]);
      expect(JSON.stringify(list)).not.toContain(hook.secret);

      const dev = new TestDevice("dev-a");
      await push(s, [dev.create("ring the bell")]);
      const deadline = Date.now() + 10_000;
      while (received.length === 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(received).toHaveLength(1);
      const { body, sig } = received[0]!;
      expect(ChangesEvent.parse(JSON.parse(body)).seq).toBe(1);
      expect(verifyWebhookSignature(sig, hook.secret, body)).toBe(true);
      expect(verifyWebhookSignature(sig, "another secret entirely", body)).toBe(false);
      expect(verifyWebhookSignature(sig, hook.secret, `${body} `)).toBe(false);

      expect((await t.req(`/v1/webhooks/${hook.id}`, { method: "DELETE", headers: s.auth })).status).toBe(
        204,
      );
      expect((await t.req(`/v1/webhooks/${hook.id}`, { method: "DELETE", headers: s.auth })).status).toBe(
        404,
      );
      const bad = await t.req("/v1/webhooks", {
        method: "POST",
        headers: s.json,
        body: JSON.stringify({ url: "ftp://x" }),
      });
      expect(bad.status).toBe(400);
    } finally {
      await receiver.stop(true);
    }
  });

  test("a delivery that keeps failing is given up and logged; pushes are not blocked", async () => {
    const s = await signIn(t, "dev-a");
    const dead = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => new Response("no", { status: 500 }),
    });
    const port = dead.port;
    try {
      await t.req("/v1/webhooks", {
        method: "POST",
        headers: s.json,
        body: JSON.stringify({
          url: `http://127.0.0.1:${port}/hook`,
          secret: "a-secret-of-sufficient-length",
        }),
      });
      const dev = new TestDevice("dev-a");
      const r = await push(s, [dev.create("x")]);
      expect(r.status).toBe(200);
      const deadline = Date.now() + 10_000;
      const givenUp = () =>
        t.logs.some((l) => l.msg === "webhook delivery given up" && l.user_id === s.tokens.user_id);
      while (!givenUp() && Date.now() < deadline) await Bun.sleep(20);
      expect(givenUp()).toBe(true);
      expect(JSON.stringify(t.logs)).not.toContain("a-secret-of-sufficient-length");
    } finally {
      await dead.stop(true);
    }
  });
});
