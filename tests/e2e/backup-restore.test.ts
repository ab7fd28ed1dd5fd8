/**
 * Backups with real processes: `dionysus backup` beside a running daemon, and `dionysus vps backup`
 * / `vps restore` on PostgreSQL (pg_dump/pg_restore) and on PGlite. The PostgreSQL test restores a
 * backup under a real `vps serve` process and syncs a real edge store (with its sync engine)
 * against it: the new epoch makes the device refetch and send again the writes the restored server
 * never saw, so the device, the VPS and a second device converge with nothing lost.
 */
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "pg";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { SyncEngine } from "../../src/edge/sync/engine.ts";
import { login } from "../../src/edge/sync/login.ts";
import {
  cleanEnv,
  createPgDatabase,
  freePort,
  runCli,
  scratch,
  serve,
  startVpsProcess,
  type TestDatabase,
  type VpsProcess,
} from "../helpers/harness.ts";

setDefaultTimeout(180_000);
const tmp = scratch();
const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
  tmp.cleanup();
});

const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...opts, baseEnv: cleanEnv() });
const ok = (r: { code: number; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
};

describe("edge backup", () => {
  test("copies the database while the daemon runs; never overwrites a file", async () => {
    const dir = tmp.dir();
    const daemon = await serve(dir);
    cleanup.push(() => daemon.stop());
    for (const c of ["one", "two", "three"]) ok(await cli(["ingest", c, "--data-dir", dir]));
    const out = join(tmp.dir(), "edge-backup.db");
    const r = await cli(["backup", "--out", out, "--json", "--data-dir", dir]);
    ok(r);
    expect(JSON.parse(r.stdout)).toMatchObject({ path: out, memories: 3 });
    const copy = new Database(out, { readonly: true });
    const rows = copy.query("SELECT content FROM memories ORDER BY rid").values();
    copy.close();
    expect(rows.flat()).toEqual(["one", "two", "three"]);
    const again = await cli(["backup", "--out", out, "--data-dir", dir]);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`dionysus: ${out} exists already; nothing was written\n`);
    await daemon.stop();
  });
});

describe("vps backup and restore on PostgreSQL", () => {
  let db: TestDatabase;
  let vps: VpsProcess | undefined;
  const vpsDir = tmp.dir();
  const port = freePort();
  const start = async () => {
    vps = await startVpsProcess(["--database-url", db.url, "--data-dir", vpsDir, "--port", String(port)]);
  };
  const dbArgs = () => ["--database-url", db.url, "--data-dir", vpsDir];

  async function device(key: string): Promise<{ store: EdgeStore; engine: SyncEngine }> {
    const dir = tmp.dir();
    const store = createSqliteStore({ path: join(dir, "edge.db") });
    await login({ vpsUrl: vps!.url, dataDir: dir, store, apiKey: key, deviceName: "t", platform: "test" });
    const engine = new SyncEngine({ store, dataDir: dir, realtime: false, random: () => 0.5 });
    cleanup.push(async () => {
      await engine.stop();
      store.close();
    });
    return { store, engine };
  }

  async function vpsRows(pg: Client): Promise<Map<string, string>> {
    const { rows } = await pg.query<{ id: string; content: string }>(
      "SELECT id, content FROM memories WHERE NOT deleted",
    );
    return new Map(rows.map((r) => [r.id, r.content]));
  }

  test("a device converges after a restore and resends what the restored server never saw", async () => {
    db = await createPgDatabase();
    cleanup.push(() => db.drop());
    await start();
    cleanup.push(() => vps?.stop());
    ok(await cli(["vps", "user", "add", "rita", "--password", "rita-password", ...dbArgs()]));
    const k = await cli(["vps", "key", "create", "rita", ...dbArgs()]);
    ok(k);
    const a = await device(k.stdout.trim());
    const kept = a.store.create({ content: "before the backup", kind: "episodic", tags: [], metadata: {} });
    const edited = a.store.create({ content: "edited later", kind: "episodic", tags: [], metadata: {} });
    const removed = a.store.create({ content: "deleted later", kind: "episodic", tags: [], metadata: {} });
    await a.engine.syncNow();

    const file = join(tmp.dir(), "vps.backup");
    const b = await cli(["vps", "backup", "--out", file, "--json", ...dbArgs()]); // online
    ok(b);
    const header = JSON.parse(b.stdout) as { kind: string; epoch: string };
    expect(header.kind).toBe("postgres");
    expect(readFileSync(file).subarray(0, 20).toString()).toBe("DIONYSUS-VPS-BACKUP ");

    // After the backup: a new memory, an edit and a delete, all acknowledged by the VPS.
    const late = a.store.create({ content: "after the backup", kind: "episodic", tags: [], metadata: {} });
    a.store.update(edited.id, { content: "edited after the backup" });
    a.store.delete(removed.id);
    await a.engine.syncNow();
    expect(a.store.queueCounts().queued).toBe(0);

    // Refused: a restore while the server runs, a file that is not a backup, one from a newer version.
    const busy = await cli(["vps", "restore", file, "--yes", ...dbArgs()]);
    expect(busy.code).toBe(5);
    await vps!.stop();
    const junk = join(tmp.dir(), "junk");
    writeFileSync(junk, "PGDMP not ours\n");
    const notOurs = await cli(["vps", "restore", junk, "--yes", ...dbArgs()]);
    expect(notOurs.code).toBe(2);
    expect(notOurs.stderr).toBe(`dionysus: ${junk} is not a Dionysus VPS backup\n`);
    const future = join(tmp.dir(), "future.backup");
    const bytes = readFileSync(file);
    const nl = bytes.indexOf(10);
    const h = JSON.parse(bytes.subarray(20, nl).toString());
    writeFileSync(
      future,
      Buffer.concat([
        Buffer.from(
          `DIONYSUS-VPS-BACKUP ${JSON.stringify({ ...h, migrations: [...h.migrations, "9999_future"] })}`,
        ),
        bytes.subarray(nl),
      ]),
    );
    const newer = await cli(["vps", "restore", future, "--yes", ...dbArgs()]);
    expect(newer.code).toBe(6);
    expect(newer.stderr).toContain("from a newer version of dionysus");
    const noYes = await cli(["vps", "restore", file, ...dbArgs()]);
    expect(noYes.code).toBe(2);

    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    cleanup.push(() => pg.end());
    expect((await vpsRows(pg)).get(late.id)).toBe("after the backup"); // untouched by the refusals

    const r = await cli(["vps", "restore", file, "--yes", "--json", ...dbArgs()]);
    ok(r);
    const restored = JSON.parse(r.stdout) as { epoch: string };
    expect(restored.epoch).not.toBe(header.epoch);
    expect(await vpsRows(pg)).toEqual(
      new Map([
        [kept.id, "before the backup"],
        [edited.id, "edited later"],
        [removed.id, "deleted later"],
      ]),
    );

    await start();
    const report = await a.engine.syncNow();
    expect(report.refetched).toBe(true);
    const want = new Map([
      [kept.id, "before the backup"],
      [edited.id, "edited after the backup"],
      [late.id, "after the backup"],
    ]);
    expect(await vpsRows(pg)).toEqual(want);
    expect(a.store.get(removed.id)).toBeUndefined();
    expect(a.store.get(edited.id)?.content).toBe("edited after the backup");
    expect(a.store.queueCounts()).toMatchObject({ queued: 0, failed: 0 });

    const k2 = await cli(["vps", "key", "create", "rita", ...dbArgs()]);
    ok(k2);
    const second = await device(k2.stdout.trim());
    await second.engine.syncNow();
    for (const [id, content] of want) expect(second.store.get(id)?.content).toBe(content);
    expect(second.store.get(removed.id)).toBeUndefined();
    expect(second.store.countMemories()).toBe(3);
  });
});

describe("vps backup and restore on PGlite", () => {
  test("a restore brings back the backed-up rows and nothing newer", async () => {
    const dir = tmp.dir();
    ok(await cli(["vps", "user", "add", "sam", "--password", "sam-password", "--data-dir", dir]));
    const file = join(tmp.dir(), "pglite.backup");
    const b = await cli(["vps", "backup", "--out", file, "--json", "--data-dir", dir]);
    ok(b);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const before = JSON.parse(b.stdout) as { kind: string; epoch: string };
    expect(before.kind).toBe("pglite");
    ok(await cli(["vps", "user", "add", "tom", "--password", "tom-password", "--data-dir", dir]));
    const r = await cli(["vps", "restore", file, "--yes", "--json", "--data-dir", dir]);
    ok(r);
    expect((JSON.parse(r.stdout) as { epoch: string }).epoch).not.toBe(before.epoch);
    const gone = await cli(["vps", "key", "create", "tom", "--data-dir", dir]);
    expect(gone.code).toBe(3);
    // A PostgreSQL backup is refused by a PGlite VPS, before anything is touched.
    const other = join(tmp.dir(), "pg.backup");
    writeFileSync(
      other,
      readFileSync(file).toString("latin1").replace('"kind":"pglite"', '"kind":"postgres"'),
      "latin1",
    );
    const wrong = await cli(["vps", "restore", other, "--yes", "--data-dir", dir]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("is a backup of a postgres database; this VPS uses pglite");
  });
});
