/**
 * Two real VPS processes on one PostgreSQL: a device streaming events from instance 1 is poked for
 * a write made through instance 2 (LISTEN/NOTIFY fan-out), and a revocation made with the admin
 * CLI stops the device's token and stream on every instance.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_GRANT, TokenResponse } from "../../src/core/protocol/auth.ts";
import { ChangesEvent, PushResponse } from "../../src/core/protocol/sync.ts";
import {
  createTestDatabase,
  runCli,
  startVpsProcess,
  TEST_DATABASE_URL,
  type TestDatabase,
  type VpsProcess,
} from "../helpers/harness.ts";
import { TestDevice } from "../helpers/memories.ts";
import { readSse } from "../helpers/vps-app.ts";

describe.skipIf(!TEST_DATABASE_URL)("two VPS instances on one PostgreSQL", () => {
  let tdb: TestDatabase;
  let one: VpsProcess | undefined;
  let two: VpsProcess | undefined;
  let key: string;
  let dirs: string[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dirs = [1, 2].map((i) => mkdtempSync(join(tmpdir(), `dionysus-vps${i}-`)));
    const migrate = await runCli(["vps", "migrate", "--database-url", tdb.url, "--json"]);
    expect(migrate.code).toBe(0);
    expect(JSON.parse(migrate.stdout)).toEqual({
      applied: [
        "0001_initial",
        "0002_graph",
        "0003_heavy",
        "0004_device_history",
        "0005_fts_cap",
        "0006_scope_source",
        "0007_rate_limits",
        "0008_token_api_key",
      ],
    });
    [one, two] = await Promise.all(
      dirs.map((dir) => startVpsProcess(["--database-url", tdb.url, "--data-dir", dir])),
    );
    const add = await runCli(["vps", "user", "add", "erin", "--database-url", tdb.url], {
      input: "erin-password\n",
    });
    expect(add.code).toBe(0);
    const k = await runCli(["vps", "key", "create", "erin", "--database-url", tdb.url, "--json"]);
    expect(k.code).toBe(0);
    key = (JSON.parse(k.stdout) as { key: string }).key;
  }, 90_000);

  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    await tdb?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function token(base: string, deviceId: string) {
    const res = await fetch(`${base}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key, device_id: deviceId }),
    });
    expect(res.status).toBe(200);
    return TokenResponse.parse(await res.json());
  }

  test("a push on instance 2 pokes an SSE client on instance 1", async () => {
    const a = await token(one!.url, "laptop");
    const b = await token(two!.url, "phone");
    const events = await fetch(`${one!.url}/v1/events`, {
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(events.status).toBe(200);
    const reading = readSse(events, 1, 5000);
    await Bun.sleep(100);
    const dev = new TestDevice("phone");
    const push = await fetch(`${two!.url}/v1/sync/push`, {
      method: "POST",
      headers: { authorization: `Bearer ${b.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ mutations: [dev.create("written through instance 2")] }),
    });
    expect(PushResponse.parse(await push.json()).results[0]!.status).toBe("applied");
    const { events: got } = await reading;
    expect(got).toHaveLength(1);
    expect(ChangesEvent.parse(JSON.parse(got[0]!.data!)).seq).toBe(1);
    const pull = await fetch(`${one!.url}/v1/sync/pull`, {
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(JSON.stringify(await pull.json())).toContain("written through instance 2");
  });

  test("vps revoke (CLI) stops the device's token on both instances and closes its stream", async () => {
    const a = await token(one!.url, "tablet");
    const events = await fetch(`${one!.url}/v1/events`, {
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    const reader = events.body!.getReader();
    await reader.read();
    const devices = await runCli(["vps", "devices", "erin", "--database-url", tdb.url, "--json"]);
    expect(
      (JSON.parse(devices.stdout) as Array<{ device_id: string }>).map((d) => d.device_id).sort(),
    ).toEqual(["laptop", "phone", "tablet"]);
    const revoke = await runCli(["vps", "revoke", "tablet", "--database-url", tdb.url]);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toContain("revoked tablet");
    for (const base of [one!.url, two!.url]) {
      const r = await fetch(`${base}/v1/sync/pull`, {
        headers: { authorization: `Bearer ${a.access_token}` },
      });
      expect(r.status).toBe(401);
    }
    let closed = false;
    const deadline = Date.now() + 5000;
    while (!closed && Date.now() < deadline) {
      const r = await Promise.race([reader.read(), Bun.sleep(200).then(() => undefined)]);
      if (r?.done) closed = true;
    }
    expect(closed).toBe(true);
  });

  test("both instances report healthy and expose metrics", async () => {
    for (const base of [one!.url, two!.url]) {
      expect((await fetch(`${base}/health`)).status).toBe(200);
      expect(await (await fetch(`${base}/metrics`)).text()).toContain("dionysus_http_requests_total");
    }
  });

  test("a request without a Host header (HTTP/1.0, a load balancer's health check) is answered", async () => {
    const { port } = new URL(one!.url);
    const raw = (request: string) =>
      new Promise<string>((resolve, reject) => {
        let got = "";
        void Bun.connect({
          hostname: "127.0.0.1",
          port: Number(port),
          socket: {
            open: (s) => void s.write(request),
            data: (_s, d) => {
              got += d.toString();
            },
            close: () => resolve(got),
            error: (_s, e) => reject(e),
          },
        });
      });
    expect(await raw("GET /health HTTP/1.0\r\n\r\n")).toStartWith("HTTP/1.1 200");
    expect(await raw("GET /nowhere HTTP/1.0\r\n\r\n")).toContain("no route GET /nowhere");
  });
});
