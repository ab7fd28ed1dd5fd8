/**
 * Three real `vps serve` processes on one PostgreSQL behind HAProxy (roundrobin, no stickiness),
 * and four real edge daemons of one user signed in through the balancer, so that their requests
 * and event streams are spread over the instances. Writes made on any device reach every device
 * (pokes cross instances through LISTEN/NOTIFY; the devices' periodic sync is set to 10 minutes so
 * that it cannot stand in for them). Then, while every device keeps writing, the instance holding
 * the most connections is SIGKILLed: the devices it served reconnect through the balancer, every
 * acknowledged write ends on the VPS and on every device, none is stored twice, the queues drain,
 * and no device is split off as a copy. The job worker is off (`--no-worker`): it is not what this
 * tests. Needs Debian's `haproxy` (scripts/ensure-test-tools.sh installs it in CI); skipped without.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { Client } from "pg";
import { type Edge, edge, expectHealed, write } from "../helpers/fault-world.ts";
import { type Haproxy, haproxyBinary, startHaproxy } from "../helpers/haproxy.ts";
import {
  aliceKey,
  createTestDatabase,
  eventually,
  runCli,
  startVpsProcess,
  TEST_DATABASE_URL,
  type TestDatabase,
  tempDir,
  type VpsProcess,
} from "../helpers/harness.ts";
import { installWriteAudit } from "../helpers/write-audit.ts";

setDefaultTimeout(240_000);

const binary = haproxyBinary();
if (!binary) console.warn("vps-haproxy: skipped: needs haproxy (apt-get install haproxy)");

const INSTANCES = 3;
const DEVICES = 4;

describe.skipIf(!binary || !TEST_DATABASE_URL)("several VPS instances behind HAProxy", () => {
  let tdb: TestDatabase;
  let dir: ReturnType<typeof tempDir>;
  let instances: VpsProcess[] = [];
  let lb: Haproxy | undefined;
  let devices: Edge[] = [];
  /** Every write a device acknowledged so far: id → content. */
  const acked = new Map<string, string>();

  beforeAll(async () => {
    tdb = await createTestDatabase();
    dir = tempDir("dionysus-haproxy-");
    const db = ["--database-url", tdb.url];
    const migrate = await runCli(["vps", "migrate", ...db]);
    expect(migrate.code).toBe(0);
    const env = {
      DIONYSUS_VPS_TRUSTED_PROXIES: "127.0.0.1",
      DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "100000",
      DIONYSUS_VPS_USER_RATE_LIMIT_PER_MIN: "100000",
    };
    instances = await Promise.all(
      Array.from({ length: INSTANCES }, (_, i) =>
        startVpsProcess([...db, "--data-dir", `${dir.path}/vps${i + 1}`, "--no-worker"], 60_000, env),
      ),
    );
    await installWriteAudit(tdb.url);
    const key = await aliceKey(`${dir.path}/vps1`);
    lb = await startHaproxy(
      binary!,
      instances.map((v, i) => ({ name: `vps${i + 1}`, address: new URL(v.url).host })),
    );
    devices = Array.from({ length: DEVICES }, (_, i) =>
      edge(`device${i + 1}`, `${dir.path}/edge${i + 1}`, { env: { DIONYSUS_SYNC_INTERVAL_S: "600" } }),
    );
    for (const d of devices) {
      await d.start();
      await d.login(lb.url, key);
    }
  }, 180_000);

  afterAll(async () => {
    for (const d of devices) await d.stop("SIGKILL");
    await lb?.stop();
    for (const v of instances) await v.stop();
    await tdb?.drop();
    dir?.cleanup();
  });

  /** Waits until every device's event stream is open (through the balancer). */
  async function allStreamsUp(timeoutMs: number): Promise<void> {
    await eventually(
      async () => {
        for (const d of devices) {
          const [s] = await d.api<{ realtime: string }>([{ method: "GET", path: "/v1/sync/status" }]);
          if (s!.body.realtime !== "connected") return undefined;
        }
        return true;
      },
      timeoutMs,
      "every device's event stream to be open",
    );
  }

  /** Each device writes `n` memories through its local API; all must be acknowledged. */
  async function writeOnEach(label: string, n: number): Promise<void> {
    await Promise.all(
      devices.map(async (d) => {
        const contents = Array.from({ length: n }, (_, i) => `${label} on ${d.name}, #${i}`);
        const got = await write(d, contents);
        expect(got.size).toBe(n);
        for (const [id, c] of got) acked.set(id, c);
      }),
    );
  }

  async function query<T>(text: string): Promise<T[]> {
    const c = new Client({ connectionString: tdb.url });
    await c.connect();
    try {
      return (await c.query(text)).rows as T[];
    } finally {
      await c.end();
    }
  }

  test("writes made on any device reach every device, whichever instance serves it", async () => {
    await allStreamsUp(30_000);
    await writeOnEach("before", 5);
    await expectHealed({ databaseUrl: tdb.url }, devices, acked, 60_000, acked.size);
    // Roundrobin spread the devices' requests over every instance.
    const stats = await lb!.servers();
    expect(stats.map((s) => s.status)).toEqual(Array(INSTANCES).fill("UP"));
    for (const s of stats) expect(s.total).toBeGreaterThan(0);
  });

  test("an instance SIGKILLed while the devices write: they reconnect through the balancer and lose nothing", async () => {
    await allStreamsUp(30_000);
    // The instance holding the most connections now (the devices' event streams) is the victim.
    const before = await lb!.servers();
    const victim = before.reduce((a, b) => (b.current > a.current ? b : a));
    expect(victim.current).toBeGreaterThan(0);
    const index = Number(victim.name.replace("vps", "")) - 1;
    const onVpsAtStart = acked.size;

    // Every device writes 10 rounds of 5 memories; the kill lands once part of them is on the VPS.
    const writing = (async () => {
      for (let round = 0; round < 10; round++) await writeOnEach(`round ${round}`, 5);
    })();
    await eventually(
      async () => {
        const [r] = await query<{ n: number }>("SELECT count(*)::int AS n FROM memories");
        return r!.n >= onVpsAtStart + 40 ? true : undefined;
      },
      60_000,
      "some of the new writes to reach the VPS",
    );
    instances[index]!.proc.kill("SIGKILL");
    await instances[index]!.proc.exited;
    await writing;

    // HAProxy takes the dead instance out, and the devices it served reconnect to the others.
    await eventually(
      async () => {
        const s = (await lb!.servers()).find((x) => x.name === victim.name)!;
        return s.status.startsWith("DOWN") ? true : undefined;
      },
      20_000,
      `haproxy to mark ${victim.name} down`,
    );
    await eventually(
      async () => {
        const survivors = (await lb!.servers()).filter((s) => s.name !== victim.name);
        return survivors.reduce((n, s) => n + s.current, 0) >= DEVICES ? true : undefined;
      },
      60_000,
      "every device's event stream to be held by the surviving instances",
    );
    await allStreamsUp(60_000);

    expect(acked.size).toBe(onVpsAtStart + DEVICES * 50);
    await expectHealed({ databaseUrl: tdb.url }, devices, acked, 120_000, acked.size);
    // No device was taken for a copy of another (a split would add a device id).
    const devs = await query<{ device_name: string }>("SELECT device_name FROM devices ORDER BY device_name");
    expect(devs.map((d) => d.device_name)).toEqual(devices.map((d) => d.name));
    // And a write made after the kill still reaches everyone.
    await writeOnEach("after", 1);
    await expectHealed({ databaseUrl: tdb.url }, devices, acked, 60_000, acked.size);
  });
});
