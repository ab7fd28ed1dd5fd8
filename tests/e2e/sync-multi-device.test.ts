/**
 * Multi-device sync through real processes: a VPS on real PostgreSQL and edge daemons
 * on their own data dirs and ports, talking over real sockets.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Cluster, createCluster, deviceMemories, type EdgeDevice, syncNow } from "../helpers/cluster.ts";
import { eventually } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

type Mem = { id: string; content: string; hlc: string; kind: string };
type Conflict = {
  memory_id: string;
  winner_hlc: string;
  loser_hlc: string;
  loser: { content: string } | null;
};

async function ingest(dev: EdgeDevice, content: string, kind = "episodic"): Promise<Mem> {
  const r = await dev.api<Mem>("POST", "/v1/memories", { content, kind });
  expect(r.status).toBe(201);
  return r.body;
}

async function contentOn(dev: EdgeDevice, id: string): Promise<string | null> {
  const r = await dev.api<Mem>("GET", `/v1/memories/${id}`);
  return r.status === 200 ? r.body.content : null;
}

/** Waits until `id` reads `content` on `dev` (null: deleted / absent). */
function until(dev: EdgeDevice, id: string, content: string | null, what: string) {
  return eventually(async () => ((await contentOn(dev, id)) === content ? true : undefined), 20_000, what);
}

async function conflictsOn(dev: EdgeDevice): Promise<Conflict[]> {
  return (await dev.api<{ conflicts: Conflict[] }>("GET", "/v1/conflicts?limit=100")).body.conflicts;
}

describe("multi-device sync (VPS on PostgreSQL, edge daemons as real processes)", () => {
  let cluster: Cluster;
  let a: EdgeDevice;
  let b: EdgeDevice;

  beforeAll(async () => {
    cluster = await createCluster();
    a = await cluster.device("laptop");
    b = await cluster.device("phone");
  });
  afterAll(async () => {
    await cluster?.close();
  });

  test("a memory written on A appears on B; an edit and a delete travel both ways", async () => {
    const m = await ingest(a, "Lunch with Ana at the harbour on Tuesday");
    await until(b, m.id, m.content, "A's memory on B");
    expect(
      (await b.api<{ results: { memory: Mem }[] }>("POST", "/v1/recall", { query: "harbour" })).body
        .results[0]?.memory.id,
    ).toBe(m.id);

    const edit = await b.api<Mem>("PATCH", `/v1/memories/${m.id}`, {
      content: "Lunch with Ana moved to Wednesday",
    });
    expect(edit.status).toBe(200);
    await until(a, m.id, "Lunch with Ana moved to Wednesday", "B's edit on A");

    expect((await a.api("DELETE", `/v1/memories/${m.id}`)).status).toBe(204);
    await until(b, m.id, null, "A's delete on B");
    expect((await cluster.vpsMemories()).has(m.id)).toBe(false);
    // Sequential edits are not conflicts.
    expect((await conflictsOn(a)).filter((c) => c.memory_id === m.id)).toEqual([]);
    expect((await conflictsOn(b)).filter((c) => c.memory_id === m.id)).toEqual([]);
  });

  test("sync status reports the queue, last success and no error when healthy", async () => {
    const s = await a.api<Record<string, unknown>>("GET", "/v1/sync/status");
    expect(s.body).toMatchObject({ auth: "ok", online: true, consecutive_failures: 0, last_error: null });
    expect(s.body.last_success_at).toEqual(expect.any(String));
    expect((s.body.queue as { queued: number }).queued).toBe(0);
  });

  // Both orders of arrival: the loser reaches the VPS first (it is overwritten there), or second
  // (it is refused as stale, and the winner learns of it from the conflict log in the feed).
  for (const first of ["loser", "winner"] as const) {
    test(`conflicting offline edits resolve last-write-wins; the loser is in both conflict logs (${first} syncs first)`, async () => {
      const m = await ingest(a, `Gym on Mondays (${first})`);
      await until(b, m.id, m.content, "memory on B");
      await cluster.stopVps();
      const onA = await a.api<Mem>("PATCH", `/v1/memories/${m.id}`, {
        content: "Gym on Mondays and Thursdays (A)",
      });
      await Bun.sleep(20);
      const onB = await b.api<Mem>("PATCH", `/v1/memories/${m.id}`, { content: "Gym moved to Fridays (B)" });
      expect(onB.body.hlc > onA.body.hlc).toBe(true);
      // The other device stays off until the first one's edit is on the VPS, so the order of
      // arrival is the one this case is about (its daemon would otherwise race on reconnect).
      const [early, late] = first === "loser" ? [a, b] : [b, a];
      await late.stop();
      await cluster.startVps();
      await syncNow(early);
      await late.start();
      await syncNow(late);
      await syncNow(early);
      expect(await contentOn(a, m.id)).toBe("Gym moved to Fridays (B)");
      expect(await contentOn(b, m.id)).toBe("Gym moved to Fridays (B)");
      for (const dev of [a, b]) {
        const logged = (await conflictsOn(dev)).filter((c) => c.memory_id === m.id);
        expect(logged).toHaveLength(1);
        expect(logged[0]).toMatchObject({ winner_hlc: onB.body.hlc, loser_hlc: onA.body.hlc });
        expect(logged[0]!.loser?.content).toBe("Gym on Mondays and Thursdays (A)");
      }
    });
  }

  test("a new device gets the identity baseline, then the full memory set", async () => {
    const who = await ingest(a, "My name is Alice; I live in Lisbon and work as a nurse", "identity");
    const more = await Promise.all(
      ["Likes green tea", "Allergic to penicillin", "Sister is called Rita"].map((t) => ingest(a, t)),
    );
    for (const m of more) await until(b, m.id, m.content, "memory on B");
    await eventually(
      async () => ((await cluster.vpsMemories()).has(who.id) ? true : undefined),
      20_000,
      "identity on VPS",
    );

    const c = await cluster.device("tablet");
    // login ran the identity baseline and a first sync.
    const expected = await cluster.vpsMemories();
    const got = await deviceMemories(c);
    expect(got).toEqual(expected);
    expect((await c.api<Mem>("GET", `/v1/memories/${who.id}`)).body.kind).toBe("identity");
  });

  test("a wiped device re-authenticates and pulls everything back", async () => {
    const before = await cluster.vpsMemories();
    await b.stop();
    b.wipe();
    await b.start();
    expect((await deviceMemories(b)).size).toBe(0);
    await b.login();
    await eventually(
      async () => {
        const got = await deviceMemories(b);
        return got.size === before.size ? got : undefined;
      },
      20_000,
      "the wiped device to hold everything",
    );
    expect(await deviceMemories(b)).toEqual(before);
  });
});

describe("a device clock ten minutes wrong still orders writes correctly", () => {
  let cluster: Cluster;
  afterAll(async () => {
    await cluster?.close();
  });

  test("ahead: its writes are re-stamped on the VPS's time; behind: its later write still wins", async () => {
    cluster = await createCluster();
    const fast = await cluster.device("fast-clock", { DIONYSUS_DEBUG_CLOCK_SKEW_MS: String(10 * 60_000) });
    const slow = await cluster.device("slow-clock", { DIONYSUS_DEBUG_CLOCK_SKEW_MS: String(-10 * 60_000) });
    const ok = await cluster.device("right-clock");

    // Ahead by ten minutes: the VPS refuses the stamp, the device corrects its clock and re-stamps.
    const m = await ingest(fast, "Plant the tomatoes");
    await until(ok, m.id, m.content, "fast device's write on the right device");
    const status = await fast.api<{ clock_offset_ms: number; queue: { queued: number; failed: number } }>(
      "GET",
      "/v1/sync/status",
    );
    expect(status.body.clock_offset_ms).toBeLessThan(-9 * 60_000);
    expect(status.body.queue.failed).toBe(0);
    // Then a later edit on a correct clock wins over it, as it happened later.
    await ok.api("PATCH", `/v1/memories/${m.id}`, { content: "Plant the tomatoes on Sunday" });
    await until(fast, m.id, "Plant the tomatoes on Sunday", "right device's later edit on the fast device");
    await until(slow, m.id, "Plant the tomatoes on Sunday", "right device's later edit on the slow device");

    // Behind by ten minutes: with the VPS unreachable, the right device edits first and the slow
    // one a moment later, neither seeing the other. The slow device's edit is the later one and
    // must win, although its own clock says it happened ten minutes earlier.
    await cluster.stopVps();
    await ok.api("PATCH", `/v1/memories/${m.id}`, { content: "Tomatoes: Saturday (first)" });
    await Bun.sleep(50);
    await slow.api("PATCH", `/v1/memories/${m.id}`, { content: "Tomatoes: Sunday afternoon (second)" });
    await cluster.startVps();
    await syncNow(ok);
    await syncNow(slow);
    for (const dev of [ok, slow, fast])
      await until(dev, m.id, "Tomatoes: Sunday afternoon (second)", `the later edit on ${dev.name}`);
  });
});
