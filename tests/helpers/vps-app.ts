/** An in-process VPS app on a fresh database (PostgreSQL when TEST_DATABASE_URL is set, else PGlite). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { VpsConfig } from "../../src/core/config.ts";
import { API_KEY_GRANT, TokenResponse } from "../../src/core/protocol/auth.ts";
import { createVpsDatabase, type VpsDatabase } from "../../src/vps/db/database.ts";
import { createVpsApp, type VpsAppDeps } from "../../src/vps/http/app.ts";
import { createVpsInstance, type VpsInstance } from "../../src/vps/instance.ts";
import type { LogEntry } from "../../src/vps/log.ts";
import { createTestDatabase, TEST_DATABASE_URL } from "./harness.ts";

export interface TestBackend {
  database: VpsDatabase;
  dataDir: string;
  url: string | undefined;
  close(): Promise<void>;
}

export async function openTestBackend(): Promise<TestBackend> {
  const dataDir = mkdtempSync(join(tmpdir(), "dionysus-vps-"));
  const tdb = TEST_DATABASE_URL ? await createTestDatabase() : undefined;
  const database = await createVpsDatabase({ data_dir: dataDir, ...(tdb ? { database_url: tdb.url } : {}) });
  return {
    database,
    dataDir,
    url: tdb?.url,
    async close() {
      await database.close();
      await tdb?.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestApp {
  app: ReturnType<typeof createVpsApp>;
  services: VpsInstance;
  logs: LogEntry[];
  /** `app.request` with a path relative to http://vps.test. */
  req(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

export async function makeTestApp(
  backend: TestBackend,
  config: Partial<VpsConfig> = {},
  extra: Partial<VpsAppDeps> & { now?: () => number; webhookRetryDelaysMs?: number[] } = {},
): Promise<TestApp> {
  const logs: LogEntry[] = [];
  const cfg = VpsConfig.parse({
    data_dir: backend.dataDir,
    rate_limit_per_min: 100_000,
    ...(backend.url ? { database_url: backend.url } : {}),
    ...config,
  });
  const services = await createVpsInstance(cfg, backend.database, {
    log: (e) => logs.push(JSON.parse(JSON.stringify(e))),
    ...(extra.now ? { now: extra.now } : {}),
    ...(extra.webhookRetryDelaysMs ? { webhookRetryDelaysMs: extra.webhookRetryDelaysMs } : {}),
  });
  const app = createVpsApp({
    vps: services,
    clientIp: () => "127.0.0.1",
    adminToken: "admin-secret-token",
    ...extra,
  });
  return {
    app,
    services,
    logs,
    req: (path, init) => Promise.resolve(app.request(`http://vps.test${path}`, init)),
    stop: () => services.stop(),
  };
}

/** Creates a user with an API key and signs a device in through the HTTP token endpoint. */
export async function signIn(t: TestApp, deviceId = "dev-a", user?: { name: string; key: string }) {
  let u = user;
  if (!u) {
    const name = `u${crypto.randomUUID().slice(0, 8)}`;
    await t.services.admin.addUser(name, "correct horse battery");
    u = { name, key: (await t.services.admin.createKey(name)).key };
  }
  const res = await t.req("/v1/auth/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      grant_type: API_KEY_GRANT,
      api_key: u.key,
      device_id: deviceId,
      device_name: "Test",
    }),
  });
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${await res.text()}`);
  const tokens = TokenResponse.parse(await res.json());
  const auth = { authorization: `Bearer ${tokens.access_token}` };
  return { user: u, tokens, auth, json: { ...auth, "content-type": "application/json" } };
}

/** Reads SSE events from a streaming response until `count` events arrived or `timeoutMs` passed. */
export async function readSse(
  res: Response,
  count: number,
  timeoutMs = 3000,
  until?: (e: { event?: string; id?: string; data?: string }) => boolean,
): Promise<{ events: Array<{ event?: string; id?: string; data?: string }>; raw: string }> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let raw = "";
  const events: Array<{ event?: string; id?: string; data?: string }> = [];
  const deadline = Date.now() + timeoutMs;
  while (events.length < count && Date.now() < deadline && !(until && events.some(until))) {
    const chunk = await Promise.race([
      reader.read(),
      Bun.sleep(Math.max(1, deadline - Date.now())).then(() => undefined),
    ]);
    if (!chunk || chunk.done) break;
    raw += dec.decode(chunk.value, { stream: true });
    const blocks = raw.split("\n\n");
    events.length = 0;
    for (const b of blocks.slice(0, -1)) {
      const ev: { event?: string; id?: string; data?: string } = {};
      for (const line of b.split("\n")) {
        if (line.startsWith("event: ")) ev.event = line.slice(7);
        else if (line.startsWith("id: ")) ev.id = line.slice(4);
        else if (line.startsWith("data: ")) ev.data = line.slice(6);
      }
      if (ev.event) events.push(ev);
    }
  }
  await reader.cancel().catch(() => {});
  return { events, raw };
}
