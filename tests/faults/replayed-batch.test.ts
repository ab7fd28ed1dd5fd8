/**
 * A replayed push batch: the same `POST /v1/sync/push` body sent again (a proxy or client that
 * retries a request whose answer it lost, or an attacker replaying a captured request), late
 * (after newer writes of the same device), and twice at the same moment. A real VPS on PostgreSQL
 * (in this process, over a real socket), raw HTTP so the test controls every byte. Each replay must
 * change nothing: no version stored twice (a trigger records every version the VPS stores, see
 * tests/helpers/write-audit.ts), no newer write rolled back, no conflict logged.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { formatHlc } from "../../src/core/hlc.ts";
import { eventually } from "../helpers/harness.ts";
import { type InprocVps, startInprocVps } from "../helpers/inproc-vps.ts";
import { installWriteAudit, readWriteAudit } from "../helpers/write-audit.ts";

setDefaultTimeout(60_000);

let vps: InprocVps;
let apiKey: string;

beforeAll(async () => {
  vps = await startInprocVps();
  apiKey = (await vps.newUser()).key;
  await installWriteAudit(vps.databaseUrl);
});
afterAll(async () => {
  await vps?.stop();
});

type PushResult = { index: number; mutation_id: number | null; status: string; code?: string };
type PushResponse = { results: PushResult[]; last_mutation_id: number };

/** A device that signs in with the API key and speaks the protocol by hand. */
async function rawDevice(deviceId: string) {
  const res = await fetch(`${vps.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      grant_type: "urn:dionysus:params:oauth:grant-type:api_key",
      api_key: apiKey,
      device_id: deviceId,
      device_name: deviceId,
    }),
  });
  expect(res.status).toBe(200);
  const { access_token } = (await res.json()) as { access_token: string };
  const auth = { authorization: `Bearer ${access_token}` };
  let ms = Date.now();
  return {
    id: deviceId,
    stamp: () => formatHlc({ ms: ++ms, counter: 0, node: deviceId }),
    /** Sends exactly `body` (a string, so a replay is byte for byte the same request). */
    async push(body: string): Promise<PushResponse> {
      const r = await fetch(`${vps.url}/v1/sync/push`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body,
      });
      if (r.status !== 200) throw new Error(`push: ${r.status} ${await r.text()}`);
      return (await r.json()) as PushResponse;
    },
  };
}

const data = (content: string) => {
  const at = new Date().toISOString();
  return { content, kind: "episodic", tags: [], metadata: {}, created_at: at, updated_at: at };
};

/** The memories' stored versions, the conflict log size, and every version stored so far. */
async function vpsState(ids: string[]) {
  const rows = await vps.pg.query<{ id: string; content: string; hlc: string; deleted: boolean }>(
    "SELECT id, content, hlc, deleted FROM memories WHERE id = ANY($1::text[]) ORDER BY id",
    [ids],
  );
  const conflicts = await vps.pg.query<{ n: string }>(
    "SELECT count(*) AS n FROM conflicts WHERE memory_id = ANY($1::text[])",
    [ids],
  );
  return {
    rows: rows.rows,
    conflicts: Number(conflicts.rows[0]!.n),
    audit: await readWriteAudit(vps.databaseUrl, ids),
  };
}

describe("a replayed push batch", () => {
  test("sent again late, after newer writes: every mutation is a duplicate and nothing rolls back", async () => {
    const dev = await rawDevice(`replay-late-${crypto.randomUUID().slice(0, 8)}`);
    const ids = [crypto.randomUUID(), crypto.randomUUID(), crypto.randomUUID()];
    const batch1 = JSON.stringify({
      mutations: ids.map((id, i) => ({
        mutation_id: i + 1,
        op: "create",
        id,
        hlc: dev.stamp(),
        base_hlc: null,
        data: data(`first version of note ${i}`),
      })),
    });
    const first = await dev.push(batch1);
    expect(first.results.map((r) => r.status)).toEqual(["applied", "applied", "applied"]);
    const afterFirst = await vpsState(ids);

    const base = afterFirst.rows.find((r) => r.id === ids[0])!.hlc;
    const batch2 = JSON.stringify({
      mutations: [
        { mutation_id: 4, op: "update", id: ids[0], hlc: dev.stamp(), base_hlc: base, data: data("edited") },
        {
          mutation_id: 5,
          op: "delete",
          id: ids[1],
          hlc: dev.stamp(),
          base_hlc: afterFirst.rows.find((r) => r.id === ids[1])!.hlc,
        },
      ],
    });
    expect((await dev.push(batch2)).results.map((r) => r.status)).toEqual(["applied", "applied"]);
    const afterSecond = await vpsState(ids);

    // The first batch again, byte for byte: all three answered duplicate, nothing stored moves.
    const replay = await dev.push(batch1);
    expect(replay.results.map((r) => r.status)).toEqual(["duplicate", "duplicate", "duplicate"]);
    expect(replay.last_mutation_id).toBe(5);
    expect(await vpsState(ids)).toEqual(afterSecond);
    // And the second batch replayed too.
    expect((await dev.push(batch2)).results.map((r) => r.status)).toEqual(["duplicate", "duplicate"]);
    const end = await vpsState(ids);
    expect(end).toEqual(afterSecond);
    expect(end.audit).toEqual({ stored: 5, twice: [] });
    expect(end.conflicts).toBe(0);
    const byId = new Map(end.rows.map((r) => [r.id, r.content]));
    expect(byId.get(ids[0]!)).toBe("edited");
    expect(byId.get(ids[1]!)).toBe("");
    expect(end.rows.find((r) => r.id === ids[1])?.deleted).toBe(true);
    expect(byId.get(ids[2]!)).toBe("first version of note 2");
  });

  test("a captured batch with its content changed is refused as another history, not applied", async () => {
    const dev = await rawDevice(`replay-forged-${crypto.randomUUID().slice(0, 8)}`);
    const id = crypto.randomUUID();
    const hlc = dev.stamp();
    const mutation = { mutation_id: 1, op: "create", id, hlc, base_hlc: null, data: data("the real note") };
    await dev.push(JSON.stringify({ mutations: [mutation] }));
    const before = await vpsState([id]);
    const forged = await dev.push(
      JSON.stringify({ mutations: [{ ...mutation, data: data("a forged note under a used number") }] }),
    );
    expect(forged.results[0]).toMatchObject({ status: "rejected", code: "device_diverged" });
    expect(await vpsState([id])).toEqual(before);
  });

  // The push takes the device's row lock in one statement and reads the recorded digests in
  // another (src/vps/sync/service.ts, writeBatch), so a copy that waited for the lock sees what the
  // first copy committed and answers `duplicate`; read in the same statement, under READ COMMITTED,
  // the digests would be those from before, and the copy would be refused as another history.
  test("the same batch three times at the same moment: each mutation applied once, the other copies answered duplicate", async () => {
    const dev = await rawDevice(`replay-race-${crypto.randomUUID().slice(0, 8)}`);
    const ids = Array.from({ length: 50 }, () => crypto.randomUUID());
    const batch = JSON.stringify({
      mutations: ids.map((id, i) => ({
        mutation_id: i + 1,
        op: "create",
        id,
        hlc: dev.stamp(),
        base_hlc: null,
        data: data(`raced note ${i}`),
      })),
    });
    // Hold the user's row (every push's write statement takes it) so the three requests pile up
    // inside the push path: the first waits for the user's row, the others for the device's.
    await vps.pg.query("BEGIN");
    await vps.pg.query(
      "SELECT 1 FROM users WHERE id = (SELECT user_id FROM devices WHERE device_id = $1) FOR UPDATE",
      [dev.id],
    );
    const pending = Promise.all([dev.push(batch), dev.push(batch), dev.push(batch)]);
    try {
      await eventually(
        async () => {
          const r = await vps.pg.query<{ n: number }>(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query NOT ILIKE '%jobs%'",
          );
          if (r.rows[0]!.n >= 2) return true;
          const all = await vps.pg.query(
            "SELECT state, wait_event_type, wait_event, left(query, 60) AS q FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
          );
          throw new Error(JSON.stringify(all.rows));
        },
        30_000,
        "pushes waiting for a row lock",
      );
    } finally {
      await vps.pg.query("COMMIT");
    }
    const answers = await pending;
    const statuses = answers.map((a) => a.results.map((r) => r.status));
    // Each mutation is applied by exactly one of the three requests.
    for (let i = 0; i < ids.length; i++) {
      const col = statuses.map((s) => s[i]);
      expect(col.filter((s) => s === "applied")).toHaveLength(1);
      // The others: `duplicate`, never refused as another history (that would split the device).
      expect(col.filter((s) => s === "duplicate")).toHaveLength(2);
    }
    for (const a of answers) {
      expect(a.results).toHaveLength(ids.length);
      expect(a.last_mutation_id).toBe(ids.length);
    }
    const end = await vpsState(ids);
    expect(end.audit).toEqual({ stored: ids.length, twice: [] });
    expect(end.rows).toHaveLength(ids.length);
    expect(end.conflicts).toBe(0);
  });
});
