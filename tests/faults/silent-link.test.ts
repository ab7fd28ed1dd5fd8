/**
 * A link that dies without a reset (a cable pulled, a VM's network gone): no FIN, no RST, the
 * event stream's socket just stops carrying bytes. The device must notice from the missing
 * heartbeats, not wait for a read that never ends: its status says `disconnected`, and once the
 * link carries bytes again the stream reopens and pokes arrive. A real VPS in this process (its
 * heartbeat shortened) on PostgreSQL, the device behind a TCP proxy that goes silent.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { VpsConfig } from "../../src/core/config.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import { SyncEngine } from "../../src/edge/sync/engine.ts";
import { login } from "../../src/edge/sync/login.ts";
import { type RunningVps, readServerFile, startVpsServer } from "../../src/vps/server.ts";
import { startCutProxy } from "../helpers/cut-proxy.ts";
import { createPgDatabase, eventually, tempDir } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

const cleanups: Array<() => Promise<void> | void> = [];
let vps: RunningVps;
let adminUrl = "";
let adminToken = "";

beforeAll(async () => {
  const db = await createPgDatabase();
  cleanups.push(() => db.drop());
  const dir = tempDir("dionysus-vps-");
  cleanups.push(() => dir.cleanup());
  vps = await startVpsServer(
    VpsConfig.parse({
      data_dir: dir.path,
      database_url: db.url,
      host: "127.0.0.1",
      port: 0,
      rate_limit_per_min: 1_000_000,
    }),
    { log: () => {}, heartbeatS: 0.2 },
  );
  cleanups.push(() => vps.stop());
  const file = readServerFile(dir.path)!;
  adminUrl = file.admin_url;
  adminToken = file.admin_token;
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function admin<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(`${adminUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A signed-in device behind a proxy, its engine running with the realtime stream on. */
async function device(key: string, name: string) {
  const dir = tempDir("dionysus-silent-");
  const store = createSqliteStore({ path: join(dir.path, "edge.db") });
  const proxy = await startCutProxy(vps.port);
  await login({
    vpsUrl: proxy.url,
    dataDir: dir.path,
    store,
    apiKey: key,
    deviceName: name,
    platform: "test",
  });
  const log: Array<Record<string, unknown>> = [];
  const engine = new SyncEngine({
    store,
    dataDir: dir.path,
    realtime: true,
    // Heartbeats every 0.2 s: two seconds without one is a dead link.
    eventsIdleMs: 2_000,
    intervalMs: 3_600_000,
    random: () => 0,
    log: (e) => log.push(e),
  });
  cleanups.push(async () => {
    await engine.stop();
    store.close();
    await proxy.close();
    dir.cleanup();
  });
  engine.start();
  return { store, engine, proxy, log };
}

describe("a link that dies silently", () => {
  test("the device notices the missing heartbeats, says disconnected, and reconnects once bytes flow again", async () => {
    const name = `s${crypto.randomUUID().slice(0, 8)}`;
    await admin("/admin/users", { name, password: "correct horse battery" });
    const { key } = await admin<{ key: string }>("/admin/keys", { user: name });
    const laptop = await device(key, "laptop");
    const phone = await device(key, "phone");
    const realtime = () => laptop.engine.status().realtime;
    await eventually(() => (realtime() === "connected" ? true : undefined), 30_000, "the stream to open");

    laptop.proxy.setSilent(true);
    await eventually(
      () => (realtime() === "disconnected" ? true : undefined),
      60_000,
      "the silent link to be noticed",
    );
    const lost = laptop.log.find((e) => e.event === "realtime_disconnected");
    expect(String(lost?.error)).toContain("not even a heartbeat");

    laptop.proxy.setSilent(false);
    await eventually(() => (realtime() === "connected" ? true : undefined), 60_000, "the stream to reopen");
    // And it works again: a write on the phone reaches the laptop through a poke (its periodic
    // cycle is an hour away).
    const m = phone.store.create({ content: "written while the laptop's link was back" });
    await phone.engine.syncNow();
    await eventually(() => laptop.store.get(m.id), 60_000, "the laptop to be poked and pull");
  });
});
