/**
 * Export and import against a real VPS (in this process, on a fresh PostgreSQL database) with real
 * edge stores: imported memories reach the VPS and other devices like local writes, and
 * last-write-wins by HLC still decides after an import (an older export never overwrites a newer
 * version, neither on the device nor on the VPS).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { exportJsonlFile } from "../../src/edge/export/export.ts";
import { importPath } from "../../src/edge/export/import.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { tempDir } from "../helpers/harness.ts";
import { type InprocVps, startInprocVps } from "../helpers/inproc-vps.ts";

setDefaultTimeout(120_000);

let vps: InprocVps;
const files = tempDir("dionysus-export-");
beforeAll(async () => {
  vps = await startInprocVps();
});
afterAll(async () => {
  await vps?.stop();
  files.cleanup();
});

const note = (content: string) => ({ content, kind: "episodic" as const, tags: ["t"], metadata: { n: 1 } });

async function exportOf(store: EdgeStore, name: string): Promise<string> {
  const path = join(files.path, name);
  await exportJsonlFile(store, store.deviceId, path, { includeDeleted: true });
  return path;
}

async function importInto(store: EdgeStore, path: string) {
  const problems: string[] = [];
  const summary = await importPath(store, path, {
    maxContentBytes: 1 << 20,
    now: Date.now,
    onProblem: (p) => problems.push(`${p.where}: ${p.reason}`),
  });
  expect(problems).toEqual([]);
  return summary;
}

async function onVps(user: string): Promise<Map<string, string>> {
  const { rows } = await vps.pg.query<{ id: string; content: string }>(
    `SELECT m.id, m.content FROM memories AS m JOIN users AS u ON u.id = m.user_id
     WHERE u.name = $1 AND NOT m.deleted`,
    [user],
  );
  return new Map(rows.map((r) => [r.id, r.content]));
}

describe("import syncs like local writes", () => {
  test("another user's export: every memory reaches that user's VPS and other device, once", async () => {
    const alice = await vps.newUser();
    const bob = await vps.newUser();
    const a = await vps.device(alice.key);
    const ids = ["one", "two", "three"].map((c) => a.store.create(note(c)).id);
    a.store.delete(ids[2]!);
    await a.engine.syncNow();
    const file = await exportOf(a.store, "alice.jsonl");

    const b1 = await vps.device(bob.key);
    const first = await importInto(b1.store, file);
    expect(first).toMatchObject({ records: 3, created: 3, bad: 0 });
    expect(b1.store.queueCounts().queued).toBe(3);
    const report = await b1.engine.syncNow();
    expect(report.pushed).toBe(3);
    expect(b1.store.queueCounts()).toMatchObject({ queued: 0, failed: 0 });
    expect(await onVps(bob.name)).toEqual(
      new Map([
        [ids[0]!, "one"],
        [ids[1]!, "two"],
      ]),
    );
    const b2 = await vps.device(bob.key);
    await b2.engine.syncNow();
    expect(b2.store.get(ids[0]!)?.content).toBe("one");
    expect(b2.store.get(ids[0]!)?.metadata).toEqual({ n: 1 });
    expect(b2.store.get(ids[2]!)).toBeUndefined();

    // Importing the same file again, on either device, changes nothing and queues nothing.
    expect(await importInto(b1.store, file)).toMatchObject({ created: 0, updated: 0, unchanged: 3 });
    expect(await importInto(b2.store, file)).toMatchObject({ created: 0, updated: 0, unchanged: 3 });
    expect(b1.store.queueCounts().queued + b2.store.queueCounts().queued).toBe(0);
  });

  test("an export older than what the VPS holds loses there too, and the device shows the newer version", async () => {
    const carol = await vps.newUser();
    const a = await vps.device(carol.key);
    const id = a.store.create(note("version one")).id;
    await a.engine.syncNow();
    const old = await exportOf(a.store, "carol-old.jsonl");
    a.store.update(id, { content: "version two" });
    await a.engine.syncNow();

    // A device that has the newer version keeps it.
    expect(await importInto(a.store, old)).toMatchObject({ older: 1, created: 0, updated: 0 });
    expect(a.store.queueCounts().queued).toBe(0);

    // A fresh device that has not pulled yet writes the old version, but the VPS answers stale
    // with the newer one, which the device then holds.
    const fresh = await vps.device(carol.key);
    expect(await importInto(fresh.store, old)).toMatchObject({ created: 1 });
    await fresh.engine.syncNow();
    expect(fresh.store.get(id)?.content).toBe("version two");
    expect(await onVps(carol.name)).toEqual(new Map([[id, "version two"]]));

    // A newer export replaces an older stored version.
    a.store.update(id, { content: "version three" });
    await a.engine.syncNow();
    const three = await exportOf(a.store, "carol-three.jsonl");
    expect(await importInto(fresh.store, three)).toMatchObject({ updated: 1 });
    await fresh.engine.syncNow();
    expect((await onVps(carol.name)).get(id)).toBe("version three");
    expect(fresh.store.get(id)?.content).toBe("version three");
  });
});
