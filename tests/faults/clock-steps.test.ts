/**
 * Clocks that step: a VPS restarted on a clock ten minutes slow, and a device whose clock runs an
 * hour ahead. Real edge stores and sync engines (in this process) and a real VPS on PostgreSQL
 * (in this process, so the test can step its clock), talking over real sockets. In both cases an
 * edit made on top of a version must win over it everywhere: causally ordered writes are never
 * reordered by a clock.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type InprocVps, startInprocVps } from "../helpers/inproc-vps.ts";

setDefaultTimeout(120_000);

/** Added to the VPS's wall clock. */
let vpsOffsetMs = 0;
let vps: InprocVps;
let apiKey: string;

beforeAll(async () => {
  vps = await startInprocVps({}, () => Date.now() + vpsOffsetMs);
  apiKey = (await vps.newUser()).key;
});

afterAll(async () => {
  await vps?.stop();
});

const mem = (content: string) => ({ content, kind: "episodic" as const, tags: [], metadata: {} });

/** A device whose wall clock is `skew.ms` off (the test may change it). */
const device = (_name: string, skew = { ms: 0 }) => vps.device(apiKey, { now: () => Date.now() + skew.ms });

describe("clock steps", () => {
  test("the VPS restarted ten minutes slow: an edit on top of a version still wins, on every device", async () => {
    vpsOffsetMs = 0;
    const a = await device("a");
    const m = a.store.create(mem("dentist on Monday"));
    await a.engine.syncNow();
    vpsOffsetMs = -600_000;
    try {
      a.store.update(m.id, { content: "dentist moved to Tuesday" });
      const r = await a.engine.syncNow();
      expect(r.rejected).toBe(0);
      const b = await device("b");
      await b.engine.syncNow();
      await a.engine.syncNow();
      expect(a.store.get(m.id)?.content).toBe("dentist moved to Tuesday");
      expect(b.store.get(m.id)?.content).toBe("dentist moved to Tuesday");
      expect(a.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
    } finally {
      vpsOffsetMs = 0;
    }
  });

  test("a device clock that jumps an hour ahead is corrected, and its re-stamped edit still follows the version it edited", async () => {
    // The VPS runs ten minutes slow, so the version being edited is stamped after the VPS's "now":
    // a re-stamp from a fresh clock at server time would fall below it and lose.
    vpsOffsetMs = -600_000;
    try {
      const right = await device("right");
      const m = right.store.create(mem("gym on Mondays"));
      await right.engine.syncNow();
      const skew = { ms: 0 };
      const ahead = await device("ahead", skew);
      await ahead.engine.syncNow();
      expect(ahead.store.get(m.id)?.content).toBe("gym on Mondays");
      skew.ms = 3_600_000;
      const edits = [
        ahead.store.update(m.id, { content: "gym on Thursdays" }),
        ahead.store.create(mem("bought tomatoes")),
        ahead.store.create(mem("called Rita")),
      ];
      const r = await ahead.engine.syncNow();
      expect(r.rejected).toBe(0);
      await right.engine.syncNow();
      for (const d of [ahead, right]) {
        expect(d.store.get(m.id)?.content).toBe("gym on Thursdays");
        expect(d.store.get(edits[1]!.id)?.content).toBe("bought tomatoes");
        expect(d.store.get(edits[2]!.id)?.content).toBe("called Rita");
      }
      expect(ahead.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
      // Stamped from the corrected clock: an hour ahead no longer.
      const later = ahead.store.create(mem("after the correction"));
      expect(Math.abs(Date.parse(later.created_at) - (Date.now() + vpsOffsetMs))).toBeLessThan(300_000);
    } finally {
      vpsOffsetMs = 0;
    }
  });
});
