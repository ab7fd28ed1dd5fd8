/**
 * Where a 500-mutation push spends its time: the VPS sync service in this process (no HTTP, no
 * job worker) on a fresh PostgreSQL database (TEST_DATABASE_URL, or the local test one), every
 * statement timed by wrapping pg's query. 20 batches of 500 (10,000 writes) by one device; the
 * statements of batch 10 and 19 are printed, then the median batch and the total.
 *
 *   bun run bench/push-profile.ts
 */
import { tmpdir } from "node:os";
import pg from "pg";
import { HlcClock } from "../src/core/hlc.ts";
import { uuidv7 } from "../src/core/uuid.ts";
import { createAuthService, type Principal } from "../src/vps/auth/service.ts";
import { createVpsDatabase } from "../src/vps/db/database.ts";
import { createSyncService } from "../src/vps/sync/service.ts";

const admin = process.env.TEST_DATABASE_URL ?? "postgres://dionysus:dionysus@127.0.0.1:5432/dionysus_test";
const name = `dionysus_prof_${Date.now()}`;
const ac = new pg.Client({ connectionString: admin });
await ac.connect();
await ac.query(`create database ${name}`);
const u = new URL(admin);
u.pathname = `/${name}`;
const vdb = await createVpsDatabase({ database_url: u.toString(), data_dir: tmpdir() });
const timings: Array<[string, number]> = [];
const origQuery = pg.Client.prototype.query;
(pg.Client.prototype as unknown as { query: unknown }).query = function (
  this: pg.Client,
  ...args: unknown[]
) {
  const t0 = performance.now();
  const text = String((args[0] as { text?: string })?.text ?? args[0])
    .replace(/\s+/g, " ")
    .slice(0, 60);
  const r = (origQuery as (...a: unknown[]) => unknown).apply(this, args);
  if (r && typeof (r as Promise<unknown>).then === "function")
    (r as Promise<unknown>).then(
      () => timings.push([text, performance.now() - t0]),
      () => {},
    );
  return r;
};
const auth = createAuthService(vdb.db, { access_token_ttl_s: 3600, refresh_token_ttl_s: 86400 });
const sync = createSyncService(vdb.db, { max_content_bytes: 100_000, max_clock_skew_ms: 60_000 });
await auth.createUser("prof", "correct horse");
const key = await auth.createApiKey("prof");
const tokens = await auth.tokenForApiKey(key.key, { device_id: "dev", device_name: "x" });
const p = (await auth.authenticate(tokens.access_token)) as Principal;
const clock = new HlcClock("dev");
let mid = 0;
const totals: number[] = [];
for (let b = 0; b < 20; b++) {
  const t = new Date().toISOString();
  const muts = Array.from({ length: 500 }, (_, i) => ({
    mutation_id: ++mid,
    op: "create",
    id: uuidv7(),
    hlc: clock.tick(),
    data: {
      content: `memory ${b}-${i} ${"lorem ipsum ".repeat(8)}`,
      kind: "episodic",
      tags: ["bench"],
      metadata: { n: i },
      created_at: t,
      updated_at: t,
    },
  }));
  timings.length = 0;
  const t0 = performance.now();
  await sync.push(p, muts);
  const total = performance.now() - t0;
  totals.push(total);
  if (b === 10 || b === 19) {
    console.log(`batch ${b}: ${total.toFixed(1)} ms`);
    for (const [q, ms] of timings) console.log(`  ${ms.toFixed(1).padStart(7)} ms  ${q}`);
  }
}
totals.sort((a, b) => a - b);
console.log(
  `median ${totals[10]!.toFixed(1)} ms per 500; total ${totals.reduce((a, b) => a + b, 0).toFixed(0)} ms for 10,000`,
);

// 100 devices (of 100 users) pushing one mutation at once, 20 rounds: the service alone.
const devices: Array<{ p: Principal; clock: HlcClock }> = [];
for (let i = 0; i < 100; i++) {
  await auth.createUser(`prof${i}`, "correct horse");
  const k = await auth.createApiKey(`prof${i}`);
  const tk = await auth.tokenForApiKey(k.key, { device_id: `d${i}`, device_name: "x" });
  devices.push({ p: (await auth.authenticate(tk.access_token)) as Principal, clock: new HlcClock(`d${i}`) });
}
const lat: number[] = [];
const burstStart = performance.now();
for (let round = 1; round <= 20; round++)
  await Promise.all(
    devices.map(async (d) => {
      const t = new Date().toISOString();
      const t0 = performance.now();
      await sync.push(d.p, [
        {
          mutation_id: round,
          op: "create",
          id: uuidv7(),
          hlc: d.clock.tick(),
          data: {
            content: `one ${round}`,
            kind: "episodic",
            tags: [],
            metadata: {},
            created_at: t,
            updated_at: t,
          },
        },
      ]);
      lat.push(performance.now() - t0);
    }),
  );
lat.sort((a, b) => a - b);
console.log(
  `one-mutation push, 100 devices at once, 20 rounds (service only, pool of 10): p50 ${lat[999]!.toFixed(1)} ms, p95 ${lat[1899]!.toFixed(1)} ms, ${(2000 / ((performance.now() - burstStart) / 1000)).toFixed(0)} pushes/s`,
);
await vdb.close();
await ac.query(`drop database ${name} with (force)`);
await ac.end();
