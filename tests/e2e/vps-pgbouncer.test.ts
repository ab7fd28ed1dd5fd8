/**
 * Two real VPS processes on PostgreSQL through PgBouncer in transaction pooling (Debian's
 * pgbouncer; skipped, and says so, where it cannot run). Requests go through PgBouncer;
 * `--direct-database-url` gives the work that needs one session throughout (the LISTEN that
 * carries pokes between instances, the migrator's advisory lock) a connection straight to
 * PostgreSQL. A push on one instance pokes a device streaming events from the other, and the
 * device pulls it, every query of both through PgBouncer.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_GRANT, TokenResponse } from "../../src/core/protocol/auth.ts";
import { ChangesEvent, PushResponse } from "../../src/core/protocol/sync.ts";
import {
  createTestDatabase,
  runCli,
  startVpsProcess,
  type TestDatabase,
  type VpsProcess,
} from "../helpers/harness.ts";
import { TestDevice } from "../helpers/memories.ts";
import { type PgBouncer, pgbouncerUnavailable, startPgBouncer } from "../helpers/pgbouncer.ts";
import { readSse } from "../helpers/vps-app.ts";

const missing =
  pgbouncerUnavailable() ?? (process.env.TEST_DATABASE_URL ? undefined : "needs TEST_DATABASE_URL");
const title = missing
  ? `VPS through PgBouncer: SKIPPED, ${missing}`
  : "VPS through PgBouncer (transaction pooling) with a direct URL for LISTEN and migrations";

describe.skipIf(missing !== undefined)(title, () => {
  let tdb: TestDatabase;
  let bouncer: PgBouncer;
  let one: VpsProcess | undefined;
  let two: VpsProcess | undefined;
  let dirs: string[] = [];
  let key = "";
  let db: string[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    bouncer = await startPgBouncer(tdb.url);
    const name = new URL(tdb.url).pathname.slice(1);
    db = ["--database-url", bouncer.url(name), "--direct-database-url", tdb.url];
    const migrate = await runCli(["vps", "migrate", ...db, "--json"]);
    expect(migrate.stderr).toBe("");
    expect((JSON.parse(migrate.stdout) as { applied: string[] }).applied).toContain("0001_initial");
    dirs = [1, 2].map((i) => mkdtempSync(join(tmpdir(), `dionysus-pgb${i}-`)));
    [one, two] = await Promise.all(dirs.map((dir) => startVpsProcess([...db, "--data-dir", dir])));
    expect((await runCli(["vps", "user", "add", "erin", ...db], { input: "erin-password\n" })).code).toBe(0);
    const k = await runCli(["vps", "key", "create", "erin", ...db, "--json"]);
    expect(k.code).toBe(0);
    key = (JSON.parse(k.stdout) as { key: string }).key;
  }, 120_000);

  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    await bouncer?.stop();
    await tdb?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function token(base: string, deviceId: string) {
    const res = await fetch(`${base}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key, device_id: deviceId }),
    });
    expect(res.status).toBe(200);
    return TokenResponse.parse(await res.json());
  }

  test("a push through instance 2 pokes a stream on instance 1, and pulls read it back", async () => {
    const a = await token(one!.url, "laptop");
    const b = await token(two!.url, "phone");
    const events = await fetch(`${one!.url}/v1/events`, {
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    expect(events.status).toBe(200);
    const reading = readSse(events, 1, 20_000);
    const dev = new TestDevice("phone");
    for (let i = 0; i < 3; i++) {
      const push = await fetch(`${two!.url}/v1/sync/push`, {
        method: "POST",
        headers: { authorization: `Bearer ${b.access_token}`, "content-type": "application/json" },
        body: JSON.stringify({ mutations: [dev.create(`through PgBouncer ${i}`)] }),
      });
      expect(PushResponse.parse(await push.json()).results[0]!.status).toBe("applied");
    }
    const { events: got } = await reading;
    expect(got).toHaveLength(1);
    expect(ChangesEvent.parse(JSON.parse(got[0]!.data!)).seq).toBeGreaterThanOrEqual(1);
    const pull = await fetch(`${one!.url}/v1/sync/pull`, {
      headers: { authorization: `Bearer ${a.access_token}` },
    });
    const body = JSON.stringify(await pull.json());
    for (let i = 0; i < 3; i++) expect(body).toContain(`through PgBouncer ${i}`);
  });
});
