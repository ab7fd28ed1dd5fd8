/**
 * Copies of a data dir never lose a write: a restored backup, a copy running beside its original,
 * and a VM rolled back in place (same file, same inode). Real processes: a VPS on PostgreSQL and
 * edge daemons, talking over real sockets. In every case each write the user made, on whichever
 * copy, reaches the VPS and another device exactly once, and no two live copies push as one device.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dbPath } from "../../src/edge/daemon-file.ts";
import {
  type Cluster,
  createCluster,
  type EdgeDevice,
  localMemories,
  syncNow,
  withDeviceDb,
} from "../helpers/cluster.ts";
import { eventually, tempDir } from "../helpers/harness.ts";

setDefaultTimeout(180_000);

async function ingest(dev: EdgeDevice, content: string): Promise<string> {
  const r = await dev.api<{ id: string }>("POST", "/v1/memories", { content });
  expect(r.status).toBe(201);
  return r.body.id;
}

const deviceIdOf = (dev: EdgeDevice) =>
  withDeviceDb(
    dev,
    (db) => (db.query("SELECT value FROM meta WHERE key = 'device_id'").get() as { value: string }).value,
  );

const sorted = (m: Map<string, string>) => [...m.values()].sort();

/** Waits until the VPS and `observer` hold exactly `contents` (and nothing else). */
async function everywhere(cluster: Cluster, observer: EdgeDevice, contents: string[]): Promise<void> {
  const want = [...contents].sort();
  await eventually(
    async () =>
      JSON.stringify(sorted(await cluster.vpsMemories())) === JSON.stringify(want) ? true : undefined,
    30_000,
    "every write on the VPS",
  );
  await syncNow(observer);
  await eventually(
    async () => (JSON.stringify(sorted(localMemories(observer))) === JSON.stringify(want) ? true : undefined),
    30_000,
    "every write on the second device",
  );
}

describe("copies of a data dir (VPS on PostgreSQL, edge daemons as real processes)", () => {
  let cluster: Cluster;
  let observer: EdgeDevice;
  const scratch = tempDir("dionysus-copies-");
  const all: string[] = [];
  /** Writes each text on `dev`, remembering it as a write that must arrive. */
  async function write(dev: EdgeDevice, texts: string[]): Promise<void> {
    for (const t of texts) {
      all.push(t);
      await ingest(dev, t);
    }
  }

  beforeAll(async () => {
    cluster = await createCluster({ vpsEnv: { DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "100000" } });
    observer = await cluster.device("observer");
  });
  afterAll(async () => {
    await cluster?.close();
    scratch.cleanup();
  });

  test("a restored backup: the writes made after the restore reach every device", async () => {
    const a = await cluster.device("restored");
    await write(a, ["r1 lunch with Ana", "r2 dentist Monday"]);
    await syncNow(a);
    await a.stop();
    const backup = join(scratch.path, "restored-backup");
    cpSync(a.dataDir, backup, { recursive: true });
    await a.start();
    await write(a, ["r3 gym Thursday", "r4 call Rita", "r5 buy tomatoes"]);
    await syncNow(a);
    const before = deviceIdOf(a);
    await a.stop();
    rmSync(a.dataDir, { recursive: true, force: true });
    cpSync(backup, a.dataDir, { recursive: true });
    await a.start();
    await write(a, ["r6 Lisbon trip", "r7 harbour walk", "r8 nurse appointment"]);
    await syncNow(a);
    await everywhere(cluster, observer, all);
    // The restored copy pushes under a device identity of its own.
    expect(deviceIdOf(a)).not.toBe(before);
    expect(sorted(localMemories(a))).toEqual([...all].sort());
    const queue = await a.api<{ queue: Record<string, number> }>("GET", "/v1/sync/status");
    expect(queue.body.queue).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
  });

  test("a copy running beside its original: both sets of writes arrive, and the two are different devices", async () => {
    const a = await cluster.device("original");
    await write(a, ["c1 tea with Mum", "c2 pay rent"]);
    await syncNow(a);
    await a.stop();
    const c = await cluster.device(
      "clone",
      {},
      { login: false, seed: (dir) => cpSync(a.dataDir, dir, { recursive: true }) },
    );
    await a.start();
    await write(a, ["c3 original: book flights", "c4 original: water plants", "c5 original: gym"]);
    await write(c, ["c6 clone: read Dune", "c7 clone: fix bike", "c8 clone: call Ana"]);
    await syncNow(a);
    await syncNow(c);
    await syncNow(a);
    await everywhere(cluster, observer, all);
    expect(deviceIdOf(a)).not.toBe(deviceIdOf(c));
    const devices = await cluster.sql<{ device_id: string; split_from: string | null }>(
      "select device_id, split_from from devices where device_id = any($1)",
      [[deviceIdOf(a), deviceIdOf(c)]],
    );
    expect(devices).toHaveLength(2);
    expect(devices.find((d) => d.device_id === deviceIdOf(c))?.split_from).toBe(deviceIdOf(a));
  });

  test("a VM rolled back in place (same file, same inode): the VPS notices the other history and nothing is lost", async () => {
    const a = await cluster.device("rolled-back");
    await write(a, ["v1 plan holiday", "v2 renew passport"]);
    await syncNow(a);
    await a.stop();
    const snapshot = new Map<string, Buffer>();
    for (const f of readdirSync(a.dataDir)) snapshot.set(f, readFileSync(join(a.dataDir, f)));
    const inode = statSync(dbPath(a.dataDir)).ino;
    await a.start();
    await write(a, ["v3 after snapshot one", "v4 after snapshot two", "v5 after snapshot three"]);
    await syncNow(a);
    await a.stop();
    // Roll back: every file gets its old bytes in place; files made since go away.
    for (const f of readdirSync(a.dataDir)) if (!snapshot.has(f)) rmSync(join(a.dataDir, f), { force: true });
    for (const [f, bytes] of snapshot) writeFileSync(join(a.dataDir, f), bytes);
    expect(statSync(dbPath(a.dataDir)).ino).toBe(inode);
    await a.start();
    await write(a, ["v6 after rollback one", "v7 after rollback two", "v8 after rollback three"]);
    await syncNow(a);
    await everywhere(cluster, observer, all);
    expect(sorted(localMemories(a))).toEqual([...all].sort());
  });
});
