/**
 * The edge's disk fills up while it syncs: its data dir is a small tmpfs of its own, filled to the
 * last byte while another device writes a few hundred memories it must pull, and while it has
 * writes of its own queued. tests/e2e/edge-local-api.test.ts covers local reads and writes on a
 * full disk; this covers the sync engine: the daemon stays up, says why it cannot sync, leaves its
 * database intact, and once space is freed it catches up and its queue drains, with every
 * acknowledged write on every replica once. Real processes; needs root to mount a tmpfs.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { dbPath } from "../../src/edge/daemon-file.ts";
import {
  type Edge,
  edge,
  edgeState,
  expectHealed,
  startVps,
  type Vps,
  write,
} from "../helpers/fault-world.ts";
import {
  canMountSmallDisk,
  createPgDatabase,
  eventually,
  mountSmallDisk,
  type SmallDisk,
  type TestDatabase,
  tempDir,
} from "../helpers/harness.ts";

setDefaultTimeout(240_000);

const canMount = canMountSmallDisk();
if (!canMount) console.warn("edge-disk-full-sync: skipped: needs root to mount a tmpfs");

describe.skipIf(!canMount)("the edge's disk full while it syncs (a small tmpfs as its data dir)", () => {
  let disk: SmallDisk;
  let db: TestDatabase;
  let dir: ReturnType<typeof tempDir>;
  let vps: Vps;
  let a: Edge;
  let b: Edge;

  beforeAll(async () => {
    disk = mountSmallDisk("8m")!;
    db = await createPgDatabase();
    dir = tempDir("dionysus-diskfull-");
    vps = await startVps({ databaseUrl: db.url, dataDir: join(dir.path, "vps") });
    a = edge("laptop-small-disk", join(disk.dir, "data"));
    b = edge("phone", join(dir.path, "b"));
    for (const d of [a, b]) {
      await d.start();
      await d.login(vps.url, vps.apiKey);
    }
  });
  afterAll(async () => {
    await a?.stop("SIGKILL");
    await b?.stop("SIGKILL");
    await vps?.stop("SIGKILL");
    disk?.unmount();
    await db?.drop();
    dir?.cleanup();
  });

  test("a clear error, an intact database, and a full catch-up once space is freed", async () => {
    const acked = await write(a, ["written on the laptop before its disk filled up"]);
    await expectHealed(vps, [a, b], acked, 60_000, acked.size);

    disk.fill();
    // The laptop's own write is refused while the disk is full, with a clear reason.
    const [refused] = await a.api<{ detail?: string; code?: string }>([
      { method: "POST", path: "/v1/memories", body: { content: "one too many on a full disk" } },
    ]);
    expect(refused!.status).toBe(503);
    expect(JSON.stringify(refused!.body)).toContain("full");

    // The phone writes what the laptop must pull: the laptop cannot store it.
    const fromB = await write(
      b,
      Array.from(
        { length: 300 },
        (_, i) => `phone note ${i} while the laptop's disk is full: ${"text ".repeat(300)}`,
      ),
    );
    expect(fromB.size).toBe(300);
    for (const [k, v] of fromB) acked.set(k, v);
    // The daemon says why it cannot take the phone's writes. (Only in its log: `GET
    // /v1/sync/status` cannot record the failure, since recording it is a write to the full disk;
    // see docs/sync.md.)
    await eventually(
      () => (a.output().includes("the disk is full; nothing was written") ? true : undefined),
      60_000,
      "the laptop to say its disk is full",
    );
    // The daemon is still up and answering reads.
    const [health] = await a.api([{ method: "GET", path: "/health" }]);
    expect(health!.status).toBe(200);
    // No corruption: the database checks out while the disk is still full.
    const check = new Database(dbPath(a.dataDir), { readonly: true });
    try {
      expect(check.query("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    } finally {
      check.close();
    }
    expect(edgeState(a.dataDir).memories.size).toBeLessThan(301);

    disk.unfill();
    for (const [k, v] of await write(a, ["written on the laptop after freeing space"])) acked.set(k, v);
    const all = await expectHealed(vps, [a, b], acked, 150_000, acked.size);
    expect(all.size).toBe(acked.size);
  });
});
