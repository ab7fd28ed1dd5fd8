/**
 * Rate-limit counters shared through PostgreSQL: two stores on one real database stand for two
 * VPS instances. Clocks are injected, so windows never turn during a test.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "kysely";
import { createVpsDatabase, type VpsDatabase } from "../../../src/vps/db/database.ts";
import {
  RateCounterStore,
  SharedFailureBudget,
  SharedRateLimiter,
} from "../../../src/vps/http/shared-rate-limit.ts";
import {
  createPgDatabase,
  eventually,
  TEST_DATABASE_URL,
  type TestDatabase,
  tempDir,
} from "../../helpers/harness.ts";

describe.skipIf(!TEST_DATABASE_URL)("rate limits shared through PostgreSQL", () => {
  let tdb: TestDatabase;
  let one: VpsDatabase;
  let two: VpsDatabase;
  const dir = tempDir("dionysus-rl-");

  beforeAll(async () => {
    tdb = await createPgDatabase();
    one = await createVpsDatabase({ database_url: tdb.url, data_dir: dir.path });
    two = await createVpsDatabase({ database_url: tdb.url, data_dir: dir.path }, { migrate: false });
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await tdb?.drop();
    dir.cleanup();
  });

  test("concurrent hits on two instances: exactly the limit is allowed, counts never repeat", async () => {
    const t = 1_800_000_000_000;
    const a = new SharedRateLimiter(new RateCounterStore(one.db), 20, 60_000, () => t);
    const b = new SharedRateLimiter(new RateCounterStore(two.db), 20, 60_000, () => t);
    const decisions = await Promise.all(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).hit("device:u1:laptop")),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(20);
    // Every hit got its own count: remaining runs 19..0 once each, then stays 0.
    const remaining = decisions.map((d) => d.remaining).sort((x, y) => y - x);
    expect(remaining.slice(0, 20)).toEqual(Array.from({ length: 20 }, (_, i) => 19 - i));
    expect(new Set(decisions.map((d) => d.resetS))).toEqual(new Set([60]));
    // Another key has its own budget.
    expect((await a.hit("device:u1:phone")).remaining).toBe(19);
  });

  test("a key's window starts at its first hit, on whichever instance; ended windows are swept", async () => {
    let t = 1_900_000_000_000;
    const storeA = new RateCounterStore(one.db);
    const a = new SharedRateLimiter(storeA, 2, 60_000, () => t);
    const b = new SharedRateLimiter(new RateCounterStore(two.db), 2, 60_000, () => t);
    expect((await a.hit("ip:10.0.0.9")).allowed).toBe(true);
    expect((await b.hit("ip:10.0.0.9")).allowed).toBe(true);
    t += 30_000;
    const refused = await a.hit("ip:10.0.0.9");
    expect(refused).toMatchObject({ allowed: false, resetS: 30 });
    t += 30_000;
    expect(await b.hit("ip:10.0.0.9")).toMatchObject({ allowed: true, remaining: 1, resetS: 60 });
    // A key not hit for a window is swept by the next instance that counts after it.
    await b.hit("ip:10.0.0.10");
    t += 120_000;
    await b.hit("ip:10.0.0.11");
    const left = await sql<{
      key: string;
    }>`select key from rate_limits where key like 'request/ip:10.0.0.1%'`.execute(one.db);
    expect(left.rows.map((r) => r.key)).toEqual(["request/ip:10.0.0.11"]);
  });

  test("failed sign-ins: concurrent reservations on two instances pass the budget exactly once; a refund frees one", async () => {
    const t = 1_800_000_000_000;
    const window = 15 * 60_000;
    const a = new SharedFailureBudget(new RateCounterStore(one.db, window, "sign-in"), window, () => t);
    const b = new SharedFailureBudget(new RateCounterStore(two.db, window, "sign-in"), window, () => t);
    const rules = [
      { key: "pair:198.51.100.1\u0000zoe", limit: 5 },
      { key: "user:zoe", limit: 50 },
    ];
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).reserve(rules)));
    const ok = answers.filter((x) => x.ok);
    expect(ok).toHaveLength(5);
    const refused = answers.find((x) => !x.ok);
    expect(refused).toMatchObject({ ok: false, rule: { limit: 5 }, resetS: 900 });
    // A right password gives its failure back: one more attempt fits.
    if (ok[0]?.ok) ok[0].refund();
    await eventually(
      async () => ((await a.reserve(rules)).ok ? true : undefined),
      5000,
      "the refunded place",
    );
    expect((await b.reserve(rules)).ok).toBe(false);
    // The request counters' sweep (a one-minute window) leaves the sign-in windows alone.
    const requests = new SharedRateLimiter(new RateCounterStore(one.db), 10, 60_000, () => t + 5 * 60_000);
    await requests.hit("ip:198.51.100.1");
    const kept = await sql<{ count: number }>`
      select count from rate_limits where key = ${"sign-in/user:zoe"}`.execute(one.db);
    expect(kept.rows[0]?.count).toBe(5);
  });

  test("without the database an instance still limits, in its own memory", async () => {
    const gone = await createVpsDatabase({ database_url: tdb.url, data_dir: dir.path }, { migrate: false });
    await gone.close();
    const l = new SharedRateLimiter(new RateCounterStore(gone.db), 1, 60_000, () => 1_800_000_000_000);
    expect((await l.hit("k")).allowed).toBe(true);
    expect((await l.hit("k")).allowed).toBe(false);
  });
});
