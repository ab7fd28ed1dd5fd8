/**
 * Device clocks ten minutes off, both ways, against a VPS on time: one device ten minutes slow
 * (its stamps look old) and one ten minutes fast (beyond the VPS's 60 s `max_clock_skew_ms`, so
 * its stamps are refused until it corrects its clock). tests/faults/clock-steps.test.ts covers a
 * VPS clock stepped back and a device an hour ahead; this adds the slow device, whose edits must
 * still win over what it has seen, and concurrent edits of the two skewed devices, which must
 * resolve to the same winner everywhere. Real edge stores and sync engines (in this process) and a
 * real VPS on PostgreSQL over a real socket; every version the VPS stores is audited
 * (tests/helpers/write-audit.ts).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type InprocDevice, type InprocVps, startInprocVps } from "../helpers/inproc-vps.ts";
import { installWriteAudit, readWriteAudit } from "../helpers/write-audit.ts";

setDefaultTimeout(120_000);

const TEN_MINUTES = 600_000;
let vps: InprocVps;
let slow: InprocDevice;
let fast: InprocDevice;

beforeAll(async () => {
  vps = await startInprocVps();
  await installWriteAudit(vps.databaseUrl);
  const { key } = await vps.newUser();
  slow = await vps.device(key, { now: () => Date.now() - TEN_MINUTES });
  fast = await vps.device(key, { now: () => Date.now() + TEN_MINUTES });
});
afterAll(async () => {
  await vps?.stop();
});

const mem = (content: string) => ({ content, kind: "episodic" as const, tags: [], metadata: {} });

async function vpsContent(id: string): Promise<string | undefined> {
  const r = await vps.pg.query<{ content: string }>("SELECT content FROM memories WHERE id = $1", [id]);
  return r.rows[0]?.content;
}

async function syncAll() {
  for (const d of [fast, slow, fast, slow]) {
    const r = await d.engine.syncNow();
    expect(r.rejected).toBe(0);
  }
}

describe("device clocks ten minutes off", () => {
  test("the fast device corrects its clock, and the slow device's edit of what it saw still wins", async () => {
    const m = fast.store.create(mem("team lunch on Friday"));
    await syncAll();
    expect(slow.store.get(m.id)?.content).toBe("team lunch on Friday");
    // The slow device edits the version it holds: its wall clock is twenty minutes behind the
    // stamp it edits, and its edit must still be the newer version.
    slow.store.update(m.id, { content: "team lunch moved to Thursday" });
    await syncAll();
    for (const d of [slow, fast]) expect(d.store.get(m.id)?.content).toBe("team lunch moved to Thursday");
    expect(await vpsContent(m.id)).toBe("team lunch moved to Thursday");
    // And the fast device, now corrected, edits on top of that.
    fast.store.update(m.id, { content: "team lunch cancelled" });
    await syncAll();
    for (const d of [slow, fast]) expect(d.store.get(m.id)?.content).toBe("team lunch cancelled");
    expect(await vpsContent(m.id)).toBe("team lunch cancelled");
    for (const d of [slow, fast])
      expect(d.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
    const audit = await readWriteAudit(vps.databaseUrl, [m.id]);
    expect(audit).toEqual({ stored: 3, twice: [] });
  });

  test("concurrent edits on the two skewed devices resolve to one winner everywhere, the loser logged", async () => {
    const m = slow.store.create(mem("book the flights"));
    await syncAll();
    slow.store.update(m.id, { content: "book the flights: window seats" });
    fast.store.update(m.id, { content: "book the flights: aisle seats" });
    await syncAll();
    const winner = await vpsContent(m.id);
    expect(["book the flights: window seats", "book the flights: aisle seats"]).toContain(winner!);
    for (const d of [slow, fast]) expect(d.store.get(m.id)?.content).toBe(winner!);
    const conflicts = await vps.pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM conflicts WHERE memory_id = $1",
      [m.id],
    );
    expect(Number(conflicts.rows[0]!.n)).toBe(1);
    for (const d of [slow, fast])
      expect(d.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
    expect((await readWriteAudit(vps.databaseUrl, [m.id])).twice).toEqual([]);
  });
});
