/**
 * The admin commands added for everyday running, as real CLI processes on a real PostgreSQL
 * database: `vps key revoke KEY_ID` (no user needed), `vps user passwd`, `vps user delete` (every
 * row of the user, only after confirmation), and on the edge `sync retry` / `sync dismiss` for
 * writes the VPS refused (failed queue items, made here by marking rows failed in the edge database).
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import { Client } from "pg";
import { cleanEnv, createPgDatabase, runCli, scratch, type TestDatabase } from "../helpers/harness.ts";

setDefaultTimeout(120_000);
const tmp = scratch();
const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...opts, baseEnv: cleanEnv() });
const ok = (r: { code: number; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
};

describe("vps admin (PostgreSQL)", () => {
  let db: TestDatabase;
  let pg: Client;
  let args: string[];
  beforeAll(async () => {
    db = await createPgDatabase();
    pg = new Client({ connectionString: db.url });
    await pg.connect();
    args = ["--database-url", db.url, "--data-dir", tmp.dir()];
  });
  afterAll(async () => {
    await pg?.end();
    await db?.drop();
    tmp.cleanup();
  });

  const count = async (table: string, userId: string) =>
    Number((await pg.query(`SELECT count(*) AS n FROM ${table} WHERE user_id = $1`, [userId])).rows[0].n);

  test("key revoke by id alone, passwd, and delete with every row of the user", async () => {
    const ann = JSON.parse(
      (await cli(["vps", "user", "add", "ann", "--password", "ann-password", "--json", ...args])).stdout,
    );
    const bob = JSON.parse(
      (await cli(["vps", "user", "add", "bob", "--password", "bob-password", "--json", ...args])).stdout,
    );
    const key = JSON.parse((await cli(["vps", "key", "create", "ann", "--json", ...args])).stdout) as {
      id: string;
    };
    ok(await cli(["vps", "key", "create", "bob", ...args]));

    const revoked = await cli(["vps", "key", "revoke", key.id, "--json", ...args]);
    ok(revoked);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ id: key.id, user_id: ann.id });
    expect(JSON.parse(revoked.stdout).revoked_at).toBeString();
    const unknown = await cli(["vps", "key", "revoke", "dny_nothing", ...args]);
    expect(unknown.code).toBe(3);

    const hashOf = async (id: string) =>
      (await pg.query("SELECT password_hash FROM users WHERE id = $1", [id])).rows[0].password_hash as string;
    ok(await cli(["vps", "user", "passwd", "ann", ...args], { input: "a-new-password\n" }));
    expect(await Bun.password.verify("a-new-password", await hashOf(ann.id))).toBe(true);
    expect(await Bun.password.verify("ann-password", await hashOf(ann.id))).toBe(false);
    const short = await cli(["vps", "user", "passwd", "ann", ...args], { input: "short\n" });
    expect(short.code).toBe(2);
    expect(await Bun.password.verify("a-new-password", await hashOf(ann.id))).toBe(true);

    for (const u of [ann.id, bob.id]) {
      await pg.query(
        `INSERT INTO memories (user_id, id, content, kind, created_at, updated_at, hlc, origin_device, seq)
         VALUES ($1, gen_random_uuid()::text, 'x', 'episodic', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z',
                 '000000000000001-000000-d', 'd', 1)`,
        [u],
      );
      await pg.query(
        `INSERT INTO graph_entities (user_id, id, name, norm_name, type)
         VALUES ($1, gen_random_uuid(), 'Ana', 'ana', 'person')`,
        [u],
      );
    }
    const noConfirm = await cli(["vps", "user", "delete", "ann", ...args]);
    expect(noConfirm.code).toBe(2);
    expect(noConfirm.stderr).toContain("--yes");
    expect(await count("memories", ann.id)).toBe(1);

    const del = await cli(["vps", "user", "delete", "ann", "--yes", "--json", ...args]);
    ok(del);
    expect(JSON.parse(del.stdout)).toMatchObject({ id: ann.id, name: "ann", memories: 1 });
    for (const t of ["memories", "api_keys", "graph_entities"]) expect(await count(t, ann.id)).toBe(0);
    expect((await pg.query("SELECT 1 FROM users WHERE id = $1", [ann.id])).rowCount).toBe(0);
    expect(await count("memories", bob.id)).toBe(1);
    expect(await count("api_keys", bob.id)).toBe(1);
    expect(await count("graph_entities", bob.id)).toBe(1);
    const again = await cli(["vps", "user", "delete", "ann", "--yes", ...args]);
    expect(again.code).toBe(3);
  });
});

describe("sync retry / dismiss (edge)", () => {
  test("a retried write goes under a new mutation number; a superseded one is dismissed", async () => {
    const dir = tmp.dir();
    for (const c of ["one", "two", "three"]) ok(await cli(["ingest", c, "--data-dir", dir]));
    const db = new Database(join(dir, "edge.db"));
    db.run("UPDATE sync_queue SET status = 'failed', last_error = 'refused' WHERE mutation_id IN (1, 2, 3)");
    // Mutation 2's memory was written again since (its current stamp is another one).
    db.run(
      "UPDATE memories SET hlc = '999999999999999-000000-x' WHERE id = (SELECT memory_id FROM sync_queue WHERE mutation_id = 2)",
    );
    db.close();

    const notFailed = await cli(["sync", "retry", "7", "--data-dir", dir]);
    expect(notFailed.code).toBe(3);
    const bad = await cli(["sync", "dismiss", "abc", "--data-dir", dir]);
    expect(bad.code).toBe(2);

    const r = await cli(["sync", "retry", "1", "2", "--json", "--data-dir", dir]);
    ok(r);
    expect(JSON.parse(r.stdout)).toEqual({ retried: [{ from: 1, to: 4 }], superseded: [2] });
    ok(await cli(["sync", "dismiss", "3", "--data-dir", dir]));
    const again = await cli(["sync", "dismiss", "3", "--data-dir", dir]);
    expect(again.code).toBe(3);

    const check = new Database(join(dir, "edge.db"), { readonly: true });
    const rows = check.query("SELECT mutation_id, status FROM sync_queue ORDER BY mutation_id").all();
    check.close();
    expect(rows).toEqual([{ mutation_id: 4, status: "queued" }]);
    const status = JSON.parse((await cli(["sync", "status", "--json", "--data-dir", dir])).stdout);
    expect(status.queue).toMatchObject({ queued: 1, failed: 0 });
  });
});
