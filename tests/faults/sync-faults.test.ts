/**
 * Sync faults (docs/sync.md): the sync engine under a VPS that goes away, a daemon killed mid-push, a VPS
 * killed mid-pull, rate limiting, permanent rejections and refused tokens. Real processes only:
 * the VPS on a fresh PostgreSQL database, edge daemons on their own data dirs and ports.
 *
 * The tests of the first block share one cluster and run in order (the mid-pull test pulls the
 * backlog the mid-push test wrote). The 429 scenario has its own rate-limited VPS; it runs in the
 * background from the start because a rate-limit window lasts a minute, and its test, the last
 * one, checks what it recorded.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Cluster,
  createCluster,
  type EdgeDevice,
  localMemories,
  withDeviceDb,
} from "../helpers/cluster.ts";
import { startCutProxy } from "../helpers/cut-proxy.ts";
import { eventually, runCli } from "../helpers/harness.ts";
import { installWriteAudit, readWriteAudit } from "../helpers/write-audit.ts";

setDefaultTimeout(300_000);

type Mem = { id: string; content: string; hlc: string; origin_device: string };
type QueueCounts = { queued: number; syncing: number; synced: number; failed: number };
type FailedItem = { mutation_id: number; memory_id: string; op: string; last_error: string | null };
type Status = {
  queue: QueueCounts;
  auth: string;
  online: boolean;
  last_success_at: string | null;
  last_attempt_at: string | null;
  next_attempt_at: string | null;
  backoff_ms: number;
  consecutive_failures: number;
  last_error: string | null;
  failed_items?: FailedItem[];
};

/** The VPS's size limit for one memory in these tests: far under the edge's own (1 MiB). */
const VPS_MAX_CONTENT_BYTES = 4096;

async function ingest(dev: EdgeDevice, content: string): Promise<Mem> {
  const r = await dev.api<Mem>("POST", "/v1/memories", { content });
  if (r.status !== 201) throw new Error(`ingest on ${dev.name}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

async function status(dev: EdgeDevice): Promise<Status> {
  return (await dev.api<Status>("GET", "/v1/sync/status")).body;
}

async function deviceId(dev: EdgeDevice): Promise<string> {
  return (await dev.api<{ device_id: string }>("GET", "/health")).body.device_id;
}

async function contentOn(dev: EdgeDevice, id: string): Promise<string | null> {
  const r = await dev.api<Mem>("GET", `/v1/memories/${id}`);
  return r.status === 200 ? r.body.content : null;
}

function until(dev: EdgeDevice, id: string, content: string | null, what: string, timeoutMs = 30_000) {
  return eventually(async () => ((await contentOn(dev, id)) === content ? true : undefined), timeoutMs, what);
}

/** Waits until nothing is queued or in flight on `dev`; returns the status then. */
function drained(dev: EdgeDevice, timeoutMs: number, what: string): Promise<Status> {
  return eventually(
    async () => {
      const s = await status(dev);
      return s.queue.queued === 0 && s.queue.syncing === 0 && s.consecutive_failures === 0 ? s : undefined;
    },
    timeoutMs,
    what,
  );
}

/** Runs `fn` over `items` with at most `limit` calls in flight, keeping the order of results. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

describe("sync faults (VPS on PostgreSQL, edge daemons as real processes)", () => {
  let cluster: Cluster;
  let a: EdgeDevice;
  let b: EdgeDevice;
  let rateLimited: Promise<RateLimitOutcome>;

  beforeAll(async () => {
    rateLimited = rateLimitScenario();
    cluster = await createCluster({
      vpsEnv: { DIONYSUS_VPS_MAX_CONTENT_BYTES: String(VPS_MAX_CONTENT_BYTES) },
    });
    a = await cluster.device("laptop");
    b = await cluster.device("phone");
  });
  afterEach(async () => {
    // A test that failed while the VPS was down must not leave it down for the tests after it.
    if (cluster && !cluster.vpsRunning()) await cluster.startVps();
  });
  afterAll(async () => {
    await cluster?.close();
    const outcome = await rateLimited;
    await outcome.close();
  });

  test("the VPS down for a while: writes queue, retries back off 10 s then 60 s, then everything drains", async () => {
    await drained(a, 20_000, "a quiet queue on A");
    await cluster.stopVps();
    const written: Mem[] = [];
    for (let i = 0; i < 5; i++) written.push(await ingest(a, `written while the VPS is down, number ${i}`));

    const first = await eventually(
      async () => {
        const s = await status(a);
        return s.consecutive_failures >= 1 ? s : undefined;
      },
      15_000,
      "a first failed attempt",
    );
    // Seen once on a loaded machine: the status poll found the count at 2 already (the 10 s retry
    // came before a poll got an answer). The backoff must then be the second step's.
    expect(first.consecutive_failures).toBeLessThanOrEqual(2);
    expect(first.online).toBe(false);
    expect(first.last_error).toContain("unreachable");
    const [low, high] = first.consecutive_failures === 1 ? [8_000, 12_000] : [48_000, 72_000];
    expect(first.backoff_ms).toBeGreaterThanOrEqual(low);
    expect(first.backoff_ms).toBeLessThanOrEqual(high);
    expect(first.next_attempt_at).not.toBeNull();
    const scheduled = Date.parse(first.next_attempt_at!) - Date.parse(first.last_attempt_at!);
    expect(Math.abs(scheduled - first.backoff_ms)).toBeLessThan(2_000);
    expect(first.queue).toMatchObject({ queued: 5, syncing: 0, failed: 0 });

    // The retry timer fires when the backoff is over, fails again, and steps to 60 s.
    const second = await eventually(
      async () => {
        const s = await status(a);
        return s.consecutive_failures >= 2 ? s : undefined;
      },
      20_000,
      "a second failed attempt",
    );
    expect(second.consecutive_failures).toBe(2);
    expect(second.backoff_ms).toBeGreaterThanOrEqual(48_000);
    expect(second.backoff_ms).toBeLessThanOrEqual(72_000);
    if (first.consecutive_failures === 1)
      expect(Date.parse(second.last_attempt_at!)).toBeGreaterThanOrEqual(
        Date.parse(first.next_attempt_at!) - 50,
      );
    expect(second.queue).toMatchObject({ queued: 5, syncing: 0, failed: 0 });

    // The VPS comes back: the realtime stream reconnects (1 s doubling to 30 s) and the queue
    // drains without waiting out the 60 s backoff, and without anyone running `dionysus sync`.
    await cluster.startVps();
    const after = await drained(a, 45_000, "A's queue to drain after the VPS came back");
    expect(after.queue.failed).toBe(0);
    expect(after).toMatchObject({ online: true, backoff_ms: 0, next_attempt_at: null, last_error: null });
    for (const m of written) await until(b, m.id, m.content, "A's offline write on B");
    const vps = await cluster.vpsMemories();
    for (const m of written) expect(vps.get(m.id)).toBe(m.content);
  });

  test("the daemon SIGKILLed in the middle of pushing a 3,000-write backlog: no loss, no duplicate", async () => {
    const N = 3000;
    // This device talks to the VPS through a proxy that can hold a push's answer back: the VPS
    // commits the batch, the device never hears of it, and is killed while it waits.
    const proxy = await startCutProxy(Number(new URL(cluster.vpsUrl).port));
    const a = await cluster.device("killed-mid-push", {}, { vpsUrl: proxy.url });
    const aId = await deviceId(a);
    // In one statement (one snapshot): the device's last applied mutation number, the user's feed
    // number, and how many vectors the VPS worker has stored for the user (each takes a feed number
    // too, in the same transaction as its vector, whenever the worker gets to it).
    const observe = async () => {
      const [row] = await cluster.sql<{
        last_mutation_id: string;
        seq: string;
        user_id: string;
        vectors: string;
      }>(
        `SELECT d.last_mutation_id, u.seq, u.id AS user_id,
           (SELECT count(*) FROM embeddings AS e WHERE e.user_id = u.id) AS vectors
         FROM devices AS d JOIN users AS u ON u.id = d.user_id WHERE d.device_id = $1`,
        [aId],
      );
      return {
        last: Number(row!.last_mutation_id),
        seq: Number(row!.seq),
        vectors: Number(row!.vectors),
        user: row!.user_id,
      };
    };
    await drained(a, 20_000, "a quiet queue on A");
    // Every version the VPS stores is recorded (tests/helpers/write-audit.ts): a mutation applied
    // twice shows up as its version stored twice, whenever the job worker embeds the memories.
    await installWriteAudit(cluster.databaseUrl);
    const before = await observe();

    await cluster.stopVps();
    const contents = Array.from(
      { length: N },
      (_, i) => `backlog ${i}: note written offline, ${"x".repeat(i % 97)}`,
    );
    const ids = await mapLimit(contents, 16, async (c) => (await ingest(a, c)).id);
    expect((await status(a)).queue.queued).toBe(N);
    await cluster.startVps();

    // Push now. Once part of the backlog is on the VPS, hold the answer of the next push: the VPS
    // commits that batch while the device waits with it `syncing`; then SIGKILL the daemon. The
    // VPS has applied writes whose answer the device never recorded.
    void a.api("POST", "/v1/sync/run").catch(() => undefined);
    await eventually(
      async () => {
        const applied = (await observe()).last - before.last;
        return applied > 0 && applied < N ? true : undefined;
      },
      60_000,
      "part of the backlog committed on the VPS",
    );
    proxy.cutNext({ route: "push", phase: "hold" });
    const inFlight = () =>
      withDeviceDb(a, (db) => {
        const q = db.query(
          "SELECT count(*) AS n, max(mutation_id) AS hi FROM sync_queue WHERE status = 'syncing'",
        );
        return q.get() as { n: number; hi: number | null };
      });
    await eventually(() => (proxy.cuts() > 0 ? true : undefined), 60_000, "a push to be held");
    const held = await eventually(
      async () => {
        const f = inFlight();
        return f.n > 0 && f.hi !== null && (await observe()).last >= f.hi ? f : undefined;
      },
      30_000,
      "the VPS to commit the held batch",
    );
    const lost = { n: held.n, hi: held.hi! };
    await a.stop("SIGKILL");
    expect(inFlight().n).toBe(lost.n);
    expect(lost.hi - before.last).toBeLessThan(N);
    // Restarted: the rows left `syncing` go back to the queue and are sent again; the VPS answers
    // those it had committed as duplicates.
    await a.start();
    const after = await drained(a, 60_000, "the backlog to drain after the restart");
    expect(after.queue.failed).toBe(0);

    // The device's last mutation number moved by exactly N; the user's feed by N writes plus the
    // vectors stored meanwhile (no write took a second number); and each of the N memories was
    // stored once, in one version: the resent batch was answered as duplicates, not applied again.
    const now = await observe();
    expect(now.last - before.last).toBe(N);
    expect(now.seq - before.seq).toBe(N + (now.vectors - before.vectors));
    const audit = await readWriteAudit(cluster.databaseUrl, ids);
    expect(audit.twice).toEqual([]);
    expect(audit.stored).toBe(N);
    const vps = await cluster.vpsMemories();
    for (let i = 0; i < N; i++) expect(vps.get(ids[i]!)).toBe(contents[i]!);
    const [conflicts] = await cluster.sql<{ n: string }>(
      "SELECT count(*) AS n FROM conflicts WHERE user_id = $1 AND memory_id = ANY($2::text[])",
      [now.user, ids],
    );
    expect(Number(conflicts!.n)).toBe(0);
    const perMemory = withDeviceDb(
      a,
      (db) =>
        db
          .query(
            "SELECT status, count(*) AS n FROM sync_queue WHERE op = 'create' AND memory_id IN (SELECT value FROM json_each(?)) GROUP BY status",
          )
          .all(JSON.stringify(ids)) as { status: string; n: number }[],
    );
    expect(perMemory).toEqual([{ status: "synced", n: N }]);

    // And the other device gets all of it.
    await eventually(
      () => {
        const onB = localMemories(b);
        return ids.every((id) => onB.has(id)) ? true : undefined;
      },
      60_000,
      "the backlog on B",
    );
    await a.stop();
    await proxy.close();
  });

  test("the VPS SIGKILLed in the middle of a new device's first pull: the device ends with exactly the VPS's set", async () => {
    const expected = await cluster.vpsMemories();
    expect(expected.size).toBeGreaterThan(2000);
    // The kill must land between two pages of the first pull; with a fast pull the window can be
    // missed, so a fresh device tries again (at most three times).
    for (let attempt = 1; ; attempt++) {
      const c = await cluster.device(`new-device-${attempt}`, {}, { login: false });
      const login = c.cli(["login", cluster.vpsUrl, "--api-key", cluster.apiKey, "--name", c.name, "--json"]);
      let partial = 0;
      withDeviceDb(c, (db) => {
        const count = db.query("SELECT count(*) AS n FROM memories");
        const deadline = Date.now() + 30_000;
        for (;;) {
          partial = (count.get() as { n: number }).n;
          if (partial > 0 || Date.now() > deadline) break;
          Bun.sleepSync(2);
        }
      });
      await cluster.stopVps("SIGKILL");
      const loginResult = await login;
      expect(loginResult.code).toBe(0);
      const atKill = localMemories(c).size;
      if (atKill >= expected.size && attempt < 3) {
        await cluster.startVps();
        await c.stop();
        continue;
      }
      expect(partial).toBeGreaterThan(0);
      expect(atKill).toBeLessThan(expected.size);

      await cluster.startVps();
      await eventually(
        () => (localMemories(c).size === expected.size ? true : undefined),
        45_000,
        "the new device to finish its first pull",
      );
      expect(localMemories(c)).toEqual(expected);
      expect((await status(c)).queue).toMatchObject({ queued: 0, syncing: 0, failed: 0 });
      await c.stop();
      return;
    }
  });

  test("a write the VPS refuses for good is marked failed with its reason and does not block the writes after it", async () => {
    await drained(a, 30_000, "a quiet queue on A");
    const before = await ingest(a, "A small note before the large one");
    const big = await ingest(a, `A large note: ${"lorem ipsum ".repeat(600)}`);
    const after = await ingest(a, "A small note after the large one");

    const s = await eventually(
      async () => {
        const st = await status(a);
        return st.queue.failed === 1 && st.queue.queued === 0 && st.queue.syncing === 0 ? st : undefined;
      },
      20_000,
      "the large note to be refused",
    );
    expect(s.failed_items).toHaveLength(1);
    expect(s.failed_items![0]).toMatchObject({ memory_id: big.id, op: "create" });
    expect(s.failed_items![0]!.last_error).toContain("payload_too_large");
    expect(s.failed_items![0]!.last_error).toContain(`limit is ${VPS_MAX_CONTENT_BYTES}`);

    const vps = await cluster.vpsMemories();
    expect(vps.get(before.id)).toBe(before.content);
    expect(vps.get(after.id)).toBe(after.content);
    expect(vps.has(big.id)).toBe(false);
    await until(b, after.id, after.content, "the note after the refused one, on B");
    // The refused memory stays on the device that wrote it.
    expect(await contentOn(a, big.id)).toBe(big.content);

    const human = await a.cli(["sync", "status"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("1 failed");
    expect(human.stdout).toContain(big.id);
    expect(human.stdout).toContain("payload_too_large");

    // Editing the memory down to size sends its whole state again, and that one is accepted.
    const fixed = await a.api<Mem>("PATCH", `/v1/memories/${big.id}`, { content: "A large note, cut short" });
    expect(fixed.status).toBe(200);
    await until(b, big.id, "A large note, cut short", "the shortened note on B");
    expect((await status(a)).queue).toMatchObject({ queued: 0, failed: 1 });
  });

  test("token refresh refused: the agent goes on offline, keeps queueing, says re-authentication is needed, and resumes after login", async () => {
    await drained(a, 30_000, "a quiet queue on A");
    const creds = JSON.parse(readFileSync(join(a.dataDir, "credentials.json"), "utf8")) as {
      refresh_token: string;
    };
    const refresh = () =>
      fetch(`${cluster.vpsUrl}/v1/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ grant_type: "refresh_token", refresh_token: creds.refresh_token }),
      });
    // Someone else uses the device's refresh token, then replays it: the VPS takes the replay for
    // token theft and revokes every token of that sign-in, the device's own included.
    expect((await refresh()).status).toBe(200);
    expect((await refresh()).status).toBe(400);

    const s = await eventually(
      async () => {
        const st = await status(a);
        return st.auth === "reauth_required" ? st : undefined;
      },
      20_000,
      "A to notice its tokens are gone",
    );
    expect(s.last_error).toContain("re-authentication needed");
    const health = (await a.api<{ auth: string; status: string }>("GET", "/health")).body;
    expect(health).toMatchObject({ status: "ok", auth: "reauth_required" });

    // Local work goes on; writes stay queued while the agent waits for a login.
    const m = await ingest(a, "Written while the VPS login had expired");
    expect(await contentOn(a, m.id)).toBe(m.content);
    await Bun.sleep(2_500); // a few sync intervals pass
    expect((await status(a)).queue.queued).toBe(1);
    expect((await cluster.vpsMemories()).has(m.id)).toBe(false);
    const human = await a.cli(["sync", "status"]);
    expect(human.stdout).toContain("re-authentication needed");

    await a.login();
    const back = await drained(a, 20_000, "A to resume after login");
    expect(back.auth).toBe("ok");
    await until(b, m.id, m.content, "the write made during the outage, on B");
  });

  test("a device revoked on the VPS goes offline, keeps its writes queued, and login says why it is refused", async () => {
    const tablet = await cluster.device("tablet");
    const id = await deviceId(tablet);
    const revoke = await runCli(["vps", "revoke", id, "--database-url", cluster.databaseUrl, "--json"]);
    expect(revoke.code).toBe(0);

    await eventually(
      async () => ((await status(tablet)).auth === "reauth_required" ? true : undefined),
      20_000,
      "the tablet to notice it was revoked",
    );
    expect((await tablet.api<{ auth: string }>("GET", "/health")).body.auth).toBe("reauth_required");
    const m = await ingest(tablet, "Written on a revoked tablet");
    expect((await status(tablet)).queue.queued).toBe(1);

    const again = await tablet.cli(["login", cluster.vpsUrl, "--api-key", cluster.apiKey]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain("revoked");
    expect(again.stderr).toContain("--new-device");
    expect(await contentOn(tablet, m.id)).toBe(m.content);
    expect((await status(tablet)).queue.queued).toBe(1);

    // Signing in as a new device keeps the memories and the queue, and the queued write syncs.
    const fresh = await tablet.cli([
      "login",
      cluster.vpsUrl,
      "--api-key",
      cluster.apiKey,
      "--new-device",
      "--json",
    ]);
    expect(fresh.code).toBe(0);
    const newId = await deviceId(tablet);
    expect(newId).not.toBe(id);
    await eventually(
      async () => ((await cluster.vpsMemories()).get(m.id) === m.content ? true : undefined),
      20_000,
      "the queued write on the VPS",
    );
    expect((await status(tablet)).auth).toBe("ok");
    // The daemon writes under the new id too.
    const after = await ingest(tablet, "Written after signing in again");
    expect(after.origin_device).toBe(newId);
    await tablet.stop();
  });

  test("429s: the engine waits for Retry-After, loses nothing, and drains once the window has passed", async () => {
    const o = await rateLimited;
    if (o.error) throw o.error;
    const r = o.result!;
    // The status while limited: the backoff is the server's Retry-After, not the 10 s step.
    expect(r.limited.last_error).toContain("429");
    expect(r.limited.consecutive_failures).toBeGreaterThanOrEqual(1);
    expect(r.limited.backoff_ms % 1000).toBe(0);
    const nextAttempt = Date.parse(r.limited.next_attempt_at!);
    // The fixed window began with the device's first request; its end is when the limit lifts.
    expect(Math.abs(nextAttempt - (r.windowStart + 60_000))).toBeLessThan(2_500);
    expect(r.queuedWhileLimited).toBe(r.written.length);
    // Nothing from the device reached the sync endpoints between the 429 and Retry-After.
    const early = r.syncRequests.filter((q) => q.at > r.firstLimitedAt && q.at < nextAttempt - 1_000);
    expect(early).toEqual([]);
    // Then it drained, after the window, and the VPS holds every write.
    expect(r.drainedAt).toBeGreaterThanOrEqual(nextAttempt - 1_000);
    for (const m of r.written) expect(r.vps.get(m.id)).toBe(m.content);
  });
});

interface RateLimitOutcome {
  result?: {
    limited: Status;
    written: Mem[];
    queuedWhileLimited: number;
    windowStart: number;
    firstLimitedAt: number;
    syncRequests: { at: number; route: string; status: number }[];
    drainedAt: number;
    vps: Map<string, string>;
  };
  error?: unknown;
  close(): Promise<void>;
}

/**
 * A device on a VPS that allows 15 requests per device per minute. With a 1 s sync interval the
 * device runs out within seconds, gets 429 with Retry-After, and must wait for the next window.
 */
async function rateLimitScenario(): Promise<RateLimitOutcome> {
  let cluster: Cluster | undefined;
  const close = async () => {
    await cluster?.close();
  };
  try {
    cluster = await createCluster({ vpsEnv: { DIONYSUS_VPS_RATE_LIMIT_PER_MIN: "15" } });
    const dev = await cluster.device("limited");
    const id = await deviceId(dev);
    const limited = await eventually(
      async () => {
        const s = await status(dev);
        return s.last_error?.includes("429") ? s : undefined;
      },
      45_000,
      "a 429 from the VPS",
    );
    const written: Mem[] = [];
    for (let i = 0; i < 10; i++) written.push(await ingest(dev, `written while rate limited, number ${i}`));
    const queuedWhileLimited = (await status(dev)).queue.queued;
    await drained(dev, 90_000, "the queue to drain after the rate-limit window");
    const drainedAt = Date.now();
    const vps = await cluster.vpsMemories();

    const requests = cluster
      .vpsOutput()
      .split("\n")
      .flatMap((line) => {
        try {
          const e = JSON.parse(line) as {
            msg?: string;
            device_id?: string;
            route?: string;
            status?: number;
            time: string;
          };
          return e.msg === "request" && e.device_id === id ? [e] : [];
        } catch {
          return [];
        }
      })
      .map((e) => ({ at: Date.parse(e.time), route: e.route ?? "", status: e.status ?? 0 }));
    const windowStart = requests[0]!.at;
    const firstLimitedAt = requests.find((q) => q.status === 429)!.at;
    const syncRequests = requests.filter((q) => q.route.startsWith("/v1/sync/"));
    return {
      result: {
        limited,
        written,
        queuedWhileLimited,
        windowStart,
        firstLimitedAt,
        syncRequests,
        drainedAt,
        vps,
      },
      close,
    };
  } catch (error) {
    return { error, close };
  }
}
