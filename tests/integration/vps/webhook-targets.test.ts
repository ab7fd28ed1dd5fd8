/**
 * Webhook targets: non-public addresses refused (in every spelling, and behind host names), the
 * checked address pinned for the delivery, and the per-user cap.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createVpsInstance } from "../../../src/vps/instance.ts";
import type { HostLookup } from "../../../src/vps/push/webhook-target.ts";
import { resolveWebhookTarget } from "../../../src/vps/push/webhook-target.ts";
import { TestDevice } from "../../helpers/memories.ts";
import {
  makeTestApp,
  openTestBackend,
  signIn,
  type TestApp,
  type TestBackend,
} from "../../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend);
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
});

const register = (a: TestApp, s: Awaited<ReturnType<typeof signIn>>, url: string) =>
  a.req("/v1/webhooks", { method: "POST", headers: s.json, body: JSON.stringify({ url }) });

describe("webhook targets", () => {
  test("loopback, private, link-local, CGNAT, multicast, unspecified and metadata addresses are refused", async () => {
    const s = await signIn(t, "hooks");
    const refused = [
      "http://127.0.0.1/h",
      "http://2130706433/h",
      "http://0x7f.1/h",
      "http://017700000001/h",
      "http://[::1]/h",
      "http://[::ffff:127.0.0.1]/h",
      "http://[::ffff:a00:1]/h",
      "http://10.1.2.3/h",
      "http://172.16.0.1/h",
      "http://192.168.1.1/h",
      "http://100.64.0.1/h",
      "http://169.254.169.254/latest/meta-data",
      "http://[fd00:ec2::254]/h",
      "http://[fe80::1]/h",
      "http://224.0.0.1/h",
      "http://0.0.0.0/h",
      "http://[::]/h",
      "http://localhost:8080/h",
    ];
    for (const url of refused) {
      const res = await register(t, s, url);
      expect([url, res.status]).toEqual([url, 400]);
      expect(((await res.json()) as { detail: string }).detail).toMatch(/not a public address/);
    }
    expect(
      ((await (await t.req("/v1/webhooks", { headers: s.auth })).json()) as { webhooks: [] }).webhooks,
    ).toEqual([]);
  });

  test("every address a name resolves to is checked", async () => {
    const lookup: HostLookup = async (host) =>
      host === "mixed.example"
        ? [
            { address: "93.184.216.34", family: 4 },
            { address: "10.0.0.5", family: 4 },
          ]
        : host === "public.example"
          ? [{ address: "93.184.216.34", family: 4 }]
          : Promise.reject(new Error("ENOTFOUND"));
    await expect(resolveWebhookTarget("https://mixed.example/h", false, lookup)).rejects.toMatchObject({
      code: "invalid_input",
    });
    await expect(resolveWebhookTarget("https://nowhere.example/h", false, lookup)).rejects.toMatchObject({
      code: "invalid_input",
    });
    const ok = await resolveWebhookTarget("https://public.example:8443/h?x=1", false, lookup);
    expect(ok).toMatchObject({
      address: "93.184.216.34",
      pinnedUrl: "https://93.184.216.34:8443/h?x=1",
      host: "public.example:8443",
      serverName: "public.example",
    });
    const v6 = await resolveWebhookTarget("http://[2606:4700::1111]/h", false, lookup);
    expect(v6.pinnedUrl).toBe("http://[2606:4700::1111]/h");
  });

  test("a delivery connects to the checked address and sends the name as Host", async () => {
    const hosts: string[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        hosts.push(req.headers.get("host") ?? "");
        return new Response("ok");
      },
    });
    const lookup: HostLookup = async () => [{ address: "127.0.0.1", family: 4 }];
    const logs: Array<Record<string, unknown>> = [];
    const { VpsConfig } = await import("../../../src/core/config.ts");
    const services = await createVpsInstance(
      VpsConfig.parse({
        data_dir: backend.dataDir,
        webhook_allow_private: true,
        ...(backend.url ? { database_url: backend.url } : {}),
      }),
      backend.database,
      { log: (e) => logs.push(e), webhookLookup: lookup },
    );
    try {
      const s = await signIn(t, "pinned");
      const p = { user_id: s.tokens.user_id, user_name: s.user.name, device_id: "pinned" };
      await services.webhooks.register(p, { url: `http://hooks.internal.test:${receiver.port}/h` });
      services.webhooks.dispatch(p.user_id, 1);
      const deadline = Date.now() + 10_000;
      while (hosts.length === 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(hosts).toEqual([`hooks.internal.test:${receiver.port}`]);
    } finally {
      await services.stop();
      await receiver.stop(true);
    }
  });

  test("a name that resolves to a private address at delivery time is not delivered to", async () => {
    let hits = 0;
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch() {
        hits++;
        return new Response("ok");
      },
    });
    let answer = "93.184.216.34";
    const lookup: HostLookup = async () => [{ address: answer, family: 4 }];
    const logs: Array<Record<string, unknown>> = [];
    const { VpsConfig } = await import("../../../src/core/config.ts");
    const services = await createVpsInstance(
      VpsConfig.parse({ data_dir: backend.dataDir, ...(backend.url ? { database_url: backend.url } : {}) }),
      backend.database,
      { log: (e) => logs.push(e), webhookLookup: lookup, webhookRetryDelaysMs: [10] },
    );
    try {
      const s = await signIn(t, "rebind");
      const p = { user_id: s.tokens.user_id, user_name: s.user.name, device_id: "rebind" };
      await services.webhooks.register(p, { url: `http://rebind.example:${receiver.port}/h` });
      answer = "127.0.0.1"; // DNS rebinding: the name now points inside
      services.webhooks.dispatch(p.user_id, 1);
      const deadline = Date.now() + 10_000;
      const givenUp = () => logs.find((l) => l.msg === "webhook delivery given up");
      while (!givenUp() && Date.now() < deadline) await Bun.sleep(20);
      expect(String(givenUp()?.error)).toContain("not a public address");
      expect(hits).toBe(0);
    } finally {
      await services.stop();
      await receiver.stop(true);
    }
  });

  test("at most max_webhooks_per_user webhooks per user (10 by default), then 409", async () => {
    const a = await makeTestApp(backend, { webhook_allow_private: true });
    try {
      const s = await signIn(a, "many-hooks");
      for (let i = 0; i < 10; i++)
        expect((await register(a, s, `http://127.0.0.1:9/h${i}`)).status).toBe(201);
      const over = await register(a, s, "http://127.0.0.1:9/h10");
      expect(over.status).toBe(409);
      expect(await over.json()).toMatchObject({ code: "conflict", limit_webhooks: 10 });
      // Another user has their own budget.
      const other = await signIn(a, "few-hooks");
      expect((await register(a, other, "http://127.0.0.1:9/x")).status).toBe(201);
    } finally {
      await a.stop();
    }
  });

  test("pushes still deliver to an allowed private receiver (webhook_allow_private)", async () => {
    const bodies: string[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req) {
        bodies.push(await req.text());
        return new Response("ok");
      },
    });
    const a = await makeTestApp(backend, { webhook_allow_private: true });
    try {
      const s = await signIn(a, "allowed");
      expect((await register(a, s, `http://127.0.0.1:${receiver.port}/h`)).status).toBe(201);
      const dev = new TestDevice("allowed");
      const push = await a.req("/v1/sync/push", {
        method: "POST",
        headers: s.json,
        body: JSON.stringify({ mutations: [dev.create("hello")] }),
      });
      expect(push.status).toBe(200);
      const deadline = Date.now() + 10_000;
      while (bodies.length === 0 && Date.now() < deadline) await Bun.sleep(20);
      expect(bodies).toHaveLength(1);
    } finally {
      await a.stop();
      await receiver.stop(true);
    }
  });
});
