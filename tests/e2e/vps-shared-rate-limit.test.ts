/**
 * A rate limit holds across two real `vps serve` processes on one PostgreSQL: a device whose
 * requests alternate between the instances (a balancer without stickiness) gets the limit once,
 * not once per instance.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_GRANT, TokenResponse } from "../../src/core/protocol/auth.ts";
import {
  createTestDatabase,
  runCli,
  startVpsProcess,
  TEST_DATABASE_URL,
  type TestDatabase,
  type VpsProcess,
} from "../helpers/harness.ts";

const LIMIT = 8;

describe.skipIf(!TEST_DATABASE_URL)("rate limits across two VPS instances", () => {
  let tdb: TestDatabase;
  const procs: VpsProcess[] = [];
  const dirs: string[] = [];
  let key: string;

  beforeAll(async () => {
    tdb = await createTestDatabase();
    expect((await runCli(["vps", "migrate", "--database-url", tdb.url])).code).toBe(0);
    expect(
      (await runCli(["vps", "user", "add", "rita", "--database-url", tdb.url], { input: "rita-password\n" }))
        .code,
    ).toBe(0);
    const k = await runCli(["vps", "key", "create", "rita", "--database-url", tdb.url, "--json"]);
    key = (JSON.parse(k.stdout) as { key: string }).key;
    for (const i of [1, 2]) dirs.push(mkdtempSync(join(tmpdir(), `dionysus-rl${i}-`)));
    procs.push(
      ...(await Promise.all(
        dirs.map((dir) =>
          startVpsProcess(["--database-url", tdb.url, "--data-dir", dir, "--no-worker"], 60_000, {
            DIONYSUS_VPS_RATE_LIMIT_PER_MIN: String(LIMIT),
          }),
        ),
      )),
    );
  }, 90_000);

  afterAll(async () => {
    for (const p of procs) await p.stop();
    await tdb?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test("a device alternating between the instances is refused after the limit, on both", async () => {
    const tok = await fetch(`${procs[0]!.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key, device_id: "tablet" }),
    });
    expect(tok.status).toBe(200);
    const { access_token } = TokenResponse.parse(await tok.json());
    const answers: Array<{ status: number; remaining: number }> = [];
    for (let i = 0; i < LIMIT + 2; i++) {
      const r = await fetch(`${procs[i % 2]!.url}/v1/sync/pull`, {
        headers: { authorization: `Bearer ${access_token}` },
      });
      await r.arrayBuffer();
      answers.push({ status: r.status, remaining: Number(r.headers.get("ratelimit-remaining")) });
    }
    // Counted in the database: without it, each instance would allow LIMIT of its own.
    expect(answers.map((a) => a.status)).toEqual([...Array(LIMIT).fill(200), 429, 429]);
    expect(answers.map((a) => a.remaining)).toEqual([
      ...Array.from({ length: LIMIT }, (_, i) => LIMIT - 1 - i),
      0,
      0,
    ]);
  });
});
