/**
 * The edge sync engine against a real VPS (in this process, on a fresh PostgreSQL database) over
 * real sockets, each device behind a TCP proxy the test can cut. Edge stores are real bun:sqlite
 * files; their clocks are injected where a test needs equal or skewed stamps.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Client } from "pg";
import { VpsConfig } from "../../src/core/config.ts";
import { parseHlc } from "../../src/core/hlc.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { SyncEngine } from "../../src/edge/sync/engine.ts";
import { login } from "../../src/edge/sync/login.ts";
import { type RunningVps, readServerFile, startVpsServer } from "../../src/vps/server.ts";
import { type CutProxy, startCutProxy } from "../helpers/cut-proxy.ts";
import { createPgDatabase, eventually, tempDir } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

let db: { url: string; drop: () => Promise<void> };
let vpsDir: { path: string; cleanup: () => void };
let vps: RunningVps;
let admin: { url: string; token: string };
let pg: Client;

beforeAll(async () => {
  db = await createPgDatabase();
  vpsDir = tempDir("dionysus-vps-");
  vps = await startVpsServer(
    VpsConfig.parse({
      data_dir: vpsDir.path,
      database_url: db.url,
      host: "127.0.0.1",
      port: 0,
      rate_limit_per_min: 1_000_000,
    }),
    { log: () => {} },
  );
  const file = readServerFile(vpsDir.path)!;
  admin = { url: file.admin_url, token: file.admin_token };
  pg = new Client({ connectionString: db.url });
  await pg.connect();
});

afterAll(async () => {
  await pg?.end();
  await vps?.stop();
  await db?.drop();
  vpsDir?.cleanup();
});

async function adminCall<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(`${admin.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${admin.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A new VPS user; returns its name and an API key. */
async function newUser(): Promise<{ name: string; key: string }> {
  const name = `eng${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
  await adminCall("/admin/users", { name, password: "correct horse battery" });
  const { key } = await adminCall<{ key: string }>("/admin/keys", { user: name });
  return { name, key };
}

interface Device {
  store: EdgeStore;
  engine: SyncEngine;
  proxy: CutProxy;
  close(): Promise<void>;
}

const open: Device[] = [];
afterAll(async () => {
  for (const d of open.splice(0)) await d.close();
});

async function device(
  apiKey: string,
  opts: { now?: () => number; name?: string; log?: (event: Record<string, unknown>) => void } = {},
): Promise<Device> {
  const dir = tempDir("dionysus-engine-");
  const store = createSqliteStore({
    path: join(dir.path, "edge.db"),
    ...(opts.now ? { now: opts.now } : {}),
  });
  const proxy = await startCutProxy(vps.port);
  await login({
    vpsUrl: proxy.url,
    dataDir: dir.path,
    store,
    apiKey,
    deviceName: opts.name ?? "test device",
    platform: "test",
  });
  const engine = new SyncEngine({
    store,
    dataDir: dir.path,
    realtime: false,
    // No periodic cycle during a test: only what the test does starts one.
    intervalMs: 3_600_000,
    random: () => 0,
    ...(opts.log ? { log: opts.log } : {}),
    // The device's one wall clock: the store stamps with it, the engine measures the VPS against it.
    ...(opts.now ? { now: opts.now } : {}),
  });
  const d: Device = {
    store,
    engine,
    proxy,
    async close() {
      await engine.stop();
      store.close();
      await proxy.close();
      dir.cleanup();
    },
  };
  open.push(d);
  return d;
}

/** The user's memories on the VPS: id → content and stamp. */
async function onVps(userName: string): Promise<Map<string, { content: string; hlc: string }>> {
  const { rows } = await pg.query<{ id: string; content: string; hlc: string }>(
    `SELECT m.id, m.content, m.hlc FROM memories AS m JOIN users AS u ON u.id = m.user_id
     WHERE u.name = $1 AND NOT m.deleted`,
    [userName],
  );
  return new Map(rows.map((r) => [r.id, { content: r.content, hlc: r.hlc }]));
}

const note = (content: string) => ({ content, kind: "episodic" as const, tags: [], metadata: {} });

describe("sync engine against a real VPS", () => {
  test("equal ms and counter on two devices: the higher device id wins on the VPS and on both devices", async () => {
    const user = await newUser();
    // One clock for both devices, so that their stamps can be equal but for the device id.
    let clock = Date.now();
    const now = () => clock;
    const one = await device(user.key, { now, name: "one" });
    const two = await device(user.key, { now, name: "two" });
    const [low, high] = one.store.deviceId < two.store.deviceId ? [one, two] : [two, one];

    const m = low.store.create(note("the original"));
    await low.engine.syncNow();
    await high.engine.syncNow();
    expect(high.store.get(m.id)?.content).toBe("the original");

    // Both edit it in the same millisecond, neither having seen the other's edit. The frozen
    // test clock falls behind the VPS's real one, and each engine may have learned an offset
    // from it (at least 1 s, measured at different moments on a loaded machine): clear both, so
    // that the two stamps are made from the same clock.
    low.store.setClockOffset(0);
    high.store.setClockOffset(0);
    clock += 1000;
    const lowEdit = low.store.update(m.id, { content: "edited on the lower id" });
    const highEdit = high.store.update(m.id, { content: "edited on the higher id" });
    const [l, h] = [parseHlc(lowEdit.hlc)!, parseHlc(highEdit.hlc)!];
    expect([l.ms, l.counter]).toEqual([h.ms, h.counter]);
    expect(l.node < h.node).toBe(true);

    // The lower id reaches the VPS first; the higher one still wins there.
    await low.engine.syncNow();
    await high.engine.syncNow();
    await low.engine.syncNow();
    expect((await onVps(user.name)).get(m.id)).toEqual({
      content: "edited on the higher id",
      hlc: highEdit.hlc,
    });
    for (const d of [low, high]) {
      expect(d.store.get(m.id)).toMatchObject({ content: "edited on the higher id", hlc: highEdit.hlc });
      expect(d.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
    }
    // The losing edit is kept in the conflict log of both devices.
    for (const d of [low, high])
      expect(
        d.store.conflicts(10).some((c) => c.winner_hlc === highEdit.hlc && c.loser_hlc === lowEdit.hlc),
      ).toBe(true);
  });

  test("local writes are pushed without waiting for a timer, and writes of one moment share one cycle", async () => {
    const user = await newUser();
    const cycles: Array<Record<string, unknown>> = [];
    const d = await device(user.key, { log: (e) => e.event === "sync_cycle" && cycles.push(e) });
    d.engine.start();
    await eventually(() => (cycles.length === 1 ? true : undefined), 30_000, "the first cycle");

    // The periodic cycle is an hour away: only the write itself can start this push.
    const writes = ["one", "two", "three", "four", "five"].map((c) => d.store.create(note(c)));
    for (let i = 0; i < writes.length; i++) d.engine.notifyLocalWrite();
    await eventually(() => (cycles.length >= 2 ? true : undefined), 30_000, "the write's cycle");
    expect(cycles[1]).toMatchObject({ pushed: 5 });
    const remote = await onVps(user.name);
    for (const w of writes) expect(remote.get(w.id)?.content).toBe(w.content);

    // Writes made while a cycle is in flight are coalesced into one more cycle after it.
    const running = d.engine.syncNow();
    const more = ["six", "seven", "eight"].map((c) => {
      const m = d.store.create(note(c));
      d.engine.notifyLocalWrite();
      return m;
    });
    await running;
    await eventually(() => (d.store.queueCounts().queued === 0 ? true : undefined), 30_000, "the drain");
    await eventually(() => (cycles.length >= 4 ? true : undefined), 30_000, "the coalesced cycle");
    expect(cycles.slice(2).reduce((n, c) => n + Number(c.pushed), 0)).toBe(3);
    expect(cycles.length).toBe(4);
    const after = await onVps(user.name);
    for (const w of more) expect(after.get(w.id)?.content).toBe(w.content);
  });

  test("a push cut mid-request while the engine runs: the write still reaches the VPS", async () => {
    const user = await newUser();
    const d = await device(user.key);
    d.engine.start();
    await eventually(() => d.engine.status().last_success_at ?? undefined, 30_000, "the first cycle");

    d.proxy.cutNext({ route: "push", phase: "request" });
    const m = d.store.create(note("written while the push breaks"));
    d.engine.notifyLocalWrite();
    await eventually(() => (d.proxy.cuts() === 1 ? true : undefined), 30_000, "the cut push");
    // Nothing left syncing for minutes: the retry delivers it.
    await eventually(
      async () => ((await onVps(user.name)).get(m.id)?.content === m.content ? true : undefined),
      60_000,
      "the write on the VPS",
    );
    await eventually(
      () => (d.store.queueCounts().synced === 1 ? true : undefined),
      30_000,
      "the write marked synced",
    );
    expect(d.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
  });

  test("three writes behind a clock-skew refusal are all re-stamped and delivered, none marked synced unsent", async () => {
    const user = await newUser();
    // This device's clock runs ten minutes ahead of the VPS's.
    const d = await device(user.key, { now: () => Date.now() + 10 * 60_000 });
    const writes = ["first ahead", "second ahead", "third ahead"].map((c) => d.store.create(note(c)));
    await d.engine.syncNow();
    const remote = await onVps(user.name);
    expect(writes.map((w) => remote.get(w.id)?.content)).toEqual([
      "first ahead",
      "second ahead",
      "third ahead",
    ]);
    expect(d.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, synced: 3, failed: 0 });
    // The memories carry the stamps the VPS accepted.
    for (const w of writes) expect(d.store.get(w.id)?.hlc).toBe(remote.get(w.id)?.hlc);
  });
});
