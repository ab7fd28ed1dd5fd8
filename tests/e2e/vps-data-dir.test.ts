/**
 * `vps serve` / `vps migrate` as real processes on the embedded (PGlite) data dir: its file modes,
 * the one-process lock, and a database a newer dionysus has migrated (on PGlite and PostgreSQL).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, cpSync, lstatSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "kysely";
import { Client } from "pg";
import { createVpsDatabase } from "../../src/vps/db/database.ts";
import { createTestDatabase, runCli, startVpsProcess, tempDir, type VpsProcess } from "../helpers/harness.ts";

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

function dataDir(): string {
  const d = tempDir("dionysus-vps-dir-");
  cleanups.push(d.cleanup);
  return d.path;
}

let template: Promise<string> | undefined;

/**
 * A data dir that `vps migrate` made from nothing, once per file (PGlite's initdb costs seconds of
 * CPU): the first test checks it as it is, the others that need an existing database work on a
 * copy ({@link migratedCopy}).
 */
function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const dir = dataDir();
    // Generous: initdb has taken over a minute on a busy shared machine.
    const r = await runCli(["vps", "migrate", "--data-dir", dir], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`vps migrate exited ${r.code}: ${r.stderr}`);
    return dir;
  })();
  return template;
}

/** A copy of {@link migratedTemplate}: an existing, migrated data dir of the test's own. */
async function migratedCopy(): Promise<string> {
  const from = await migratedTemplate();
  const dir = dataDir();
  cpSync(from, dir, { recursive: true });
  return dir;
}

async function serve(args: string[]): Promise<VpsProcess> {
  const p = await startVpsProcess(args);
  cleanups.push(() => p.stop());
  return p;
}

/** Every path under `root` (itself included) with its permission bits. */
function modes(root: string): Array<{ path: string; dir: boolean; mode: number }> {
  const out: Array<{ path: string; dir: boolean; mode: number }> = [];
  const walk = (p: string) => {
    const st = lstatSync(p);
    out.push({ path: p, dir: st.isDirectory(), mode: st.mode & 0o777 });
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(root);
  return out;
}

const notOwnerOnly = (root: string) =>
  modes(root)
    .filter((m) => m.mode !== (m.dir ? 0o700 : 0o600))
    .map((m) => `${m.path} ${m.mode.toString(8)}`);

describe("embedded data dir file modes", () => {
  test("a new data dir is owner-only: dirs 0700, files 0600 (the WAL too)", async () => {
    const dir = await migratedTemplate();
    const all = modes(dir);
    expect(all.some((m) => m.path.includes("pg_wal/0000"))).toBe(true);
    expect(all.length).toBeGreaterThan(500);
    expect(notOwnerOnly(dir)).toEqual([]);
  }, 200_000);

  test("an existing world-readable data dir is put right at start, and the count is logged", async () => {
    const dir = await migratedCopy();
    // What an older dionysus left: dirs 0755, files 0666.
    const before = modes(dir);
    for (const m of before) chmodSync(m.path, m.dir ? 0o755 : 0o666);
    const server = await serve(["--data-dir", dir]);
    const fixed = server.lines
      .map((l) => JSON.parse(l) as { msg?: string; modes_fixed?: number })
      .find((e) => e.msg === "made the data dir owner-only");
    expect(fixed?.modes_fixed).toBe(before.length);
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
    expect(notOwnerOnly(dir)).toEqual([]);
    await server.stop();
    // Files PGlite created while it ran are owner-only as well once it stops.
    expect(notOwnerOnly(dir)).toEqual([]);
  }, 200_000);
});

describe("one process per embedded data dir", () => {
  test("a lock file naming a live, unrelated process does not block a start; a real second serve is refused", async () => {
    const dir = await migratedCopy();
    // A pid that is alive and is not a dionysus holding this dir: the test runner's parent.
    writeFileSync(join(dir, "pglite.lock"), `${process.ppid}\n`);
    const server = await serve(["--data-dir", dir]);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);

    const second = await runCli(["vps", "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dir]);
    expect(second.code).toBe(5);
    expect(second.stderr.trim().split("\n")).toHaveLength(1);
    expect(second.stderr).toContain(`another dionysus process (pid ${server.proc.pid}) has ${dir} open`);
    expect(second.stderr).toContain("one process only");

    const migrate = await runCli(["vps", "migrate", "--data-dir", dir]);
    expect(migrate.code).toBe(5);
    await server.stop();
    // Once the holder is gone (its lock with it), the dir opens again.
    const again = await runCli(["vps", "migrate", "--data-dir", dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("already up to date");
  }, 200_000);
});

describe("a database migrated by a newer dionysus", () => {
  const future = "9999_from_the_future";
  const expectRefused = (r: { code: number; stderr: string }) => {
    expect(r.code).toBe(6);
    expect(r.stderr.trim()).toBe(
      `dionysus: the database is from a newer version of dionysus (migration ${future}); upgrade dionysus`,
    );
  };

  test("PGlite: migrate and serve refuse it with one line and exit 6", async () => {
    const dir = await migratedCopy();
    const db = await createVpsDatabase({ data_dir: dir }, { migrate: false });
    await sql`insert into dionysus_migrations (name, timestamp) values (${future}, ${new Date().toISOString()})`.execute(
      db.db,
    );
    await db.close();
    expectRefused(await runCli(["vps", "migrate", "--data-dir", dir]));
    expectRefused(await runCli(["vps", "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dir]));
  }, 200_000);

  test("PostgreSQL: migrate and serve refuse it with one line and exit 6", async () => {
    const pg = await createTestDatabase("dionysus_newer");
    cleanups.push(() => pg.drop());
    const dir = dataDir();
    expect((await runCli(["vps", "migrate", "--data-dir", dir, "--database-url", pg.url])).code).toBe(0);
    const c = new Client({ connectionString: pg.url });
    await c.connect();
    await c.query("insert into dionysus_migrations (name, timestamp) values ($1, $2)", [
      future,
      new Date().toISOString(),
    ]);
    await c.end();
    expectRefused(await runCli(["vps", "migrate", "--data-dir", dir, "--database-url", pg.url]));
    expectRefused(
      await runCli([
        "vps",
        "serve",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--data-dir",
        dir,
        "--database-url",
        pg.url,
      ]),
    );
  }, 90_000);
});
