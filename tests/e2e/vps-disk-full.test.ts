/**
 * The embedded (PGlite) VPS on a disk that fills up: a small tmpfs mounted for the test (needs
 * root; without it the tests are skipped and say so). Real `dionysus vps` processes, except the
 * PANIC case, which runs in its own process so that a PGlite spinning forever cannot hang the run.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statfsSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { API_KEY_GRANT } from "../../src/core/protocol/auth.ts";
import { createVpsDatabase } from "../../src/vps/db/database.ts";
import { repoRoot, runCli, startVpsProcess, type VpsProcess } from "../helpers/harness.ts";
import { TestDevice } from "../helpers/memories.ts";

const mountPoint = mkdtempSync(join(tmpdir(), "dionysus-tmpfs-"));
const mounted =
  process.platform === "linux" &&
  spawnSync("mount", ["-t", "tmpfs", "-o", "size=100m,mode=0700", "tmpfs", mountPoint]).status === 0;
const dir = join(mountPoint, "vps");
const filler = join(mountPoint, "filler");
let server: VpsProcess | undefined;

afterAll(async () => {
  await server?.stop();
  if (mounted) spawnSync("umount", ["-l", mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

const free = () => {
  const s = statfsSync(mountPoint);
  return Number(s.bavail) * Number(s.bsize);
};

/** Fills the tmpfs so that about `leave` bytes stay free. */
function fill(leave: number): void {
  rmSync(filler, { force: true });
  writeFileSync(filler, Buffer.alloc(Math.max(0, free() - leave)));
}

const serveArgs = ["vps", "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dir];

/** Adds `user` with an API key through the running server; returns a push of one `size`-byte memory. */
async function signIn(vps: VpsProcess, user: string, size: number): Promise<() => Promise<Response>> {
  expect(
    (await runCli(["vps", "user", "add", user, "--data-dir", dir, "--password", `${user}-password`])).code,
  ).toBe(0);
  const key = await runCli(["vps", "key", "create", user, "--data-dir", dir]);
  expect(key.code).toBe(0);
  const tok = await fetch(`${vps.url}/v1/auth/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key.stdout.trim(), device_id: `${user}-1` }),
  });
  expect(tok.status).toBe(200);
  const { access_token } = (await tok.json()) as { access_token: string };
  const device = new TestDevice(`${user}-1`);
  // Incompressible content (base64 of random bytes), so that it needs new pages on disk.
  const bulky = () => Buffer.from(crypto.getRandomValues(new Uint8Array((size * 3) / 4))).toString("base64");
  return () =>
    fetch(`${vps.url}/v1/sync/push`, {
      method: "POST",
      headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ mutations: [device.create(bulky())] }),
      signal: AbortSignal.timeout(30_000),
    });
}

const title = mounted
  ? "PGlite VPS on a full disk (100 MiB tmpfs)"
  : "PGlite VPS on a full disk: SKIPPED, cannot mount a tmpfs here (needs root on Linux)";

describe(title, () => {
  test.skipIf(!mounted)(
    "a write that cannot extend a file answers 503 problem+json; /health stays up; freeing space heals it",
    async () => {
      expect((await runCli(["vps", "migrate", "--data-dir", dir])).code).toBe(0);
      server = await startVpsProcess(["--data-dir", dir]);
      const push = await signIn(server, "dora", 300_000);
      fill(0);
      try {
        const full = await push();
        expect(full.status).toBe(503);
        expect(full.headers.get("content-type")).toContain("application/problem+json");
        const problem = (await full.json()) as { code: string; detail: string };
        expect(problem.code).toBe("unavailable");
        expect(problem.detail).toContain(`the disk holding ${dir} is full`);
        expect((await fetch(`${server.url}/health`)).status).toBe(200);

        rmSync(filler, { force: true });
        const healed = await push();
        expect(healed.status).toBe(200);
      } finally {
        rmSync(filler, { force: true });
        await server.stop();
        server = undefined;
      }
    },
    120_000,
  );

  test.skipIf(!mounted)(
    "when the WAL cannot grow (PANIC), the write answers 503 and vps serve exits 5 with one line instead of spinning",
    async () => {
      // Put the write-ahead log where a new segment file is needed after about `headroom` bytes:
      // drop the segments recycled ahead of the current one.
      const db = await createVpsDatabase({ data_dir: dir });
      const at = await sql<{ file_name: string; file_offset: number }>`
        select * from pg_walfile_name_offset(pg_current_wal_insert_lsn())`.execute(db.db);
      await db.close();
      const current = at.rows[0]!.file_name;
      const walDir = join(dir, "pgdata", "pg_wal");
      for (const f of readdirSync(walDir))
        if (/^[0-9A-F]{24}$/.test(f) && f > current) rmSync(join(walDir, f));
      const headroom = 16 * 1024 * 1024 - Number(at.rows[0]!.file_offset);

      server = await startVpsProcess(["--data-dir", dir]);
      const vps = server;
      const stderr = new Response(vps.proc.stderr as ReadableStream<Uint8Array>).text();
      const push = await signIn(vps, "emil", 900_000);
      // Room for the data the WAL can take, but not for another 16 MiB segment after it.
      fill(headroom + 6 * 1024 * 1024);
      try {
        // Pushes go in until one fails: with a 503, or (when the server's background worker hit
        // the PANIC first) because the server has stopped.
        let last: Response | undefined;
        for (let i = 0; i < 100; i++) {
          last = await push().catch(() => undefined);
          if (last?.status !== 200) break;
        }
        expect(last?.status).not.toBe(200);
        if (last) {
          expect(last.status).toBe(503);
          const problem = (await last.json()) as { code: string; detail: string };
          expect(problem.code).toBe("unavailable");
          expect(problem.detail).toContain(`the disk holding ${dir} is full`);
        }
        expect(await vps.proc.exited).toBe(5);
        const lines = (await stderr).trim().split("\n");
        expect(lines.at(-1)).toStartWith(`dionysus: the disk holding ${dir} is full`);
      } finally {
        rmSync(filler, { force: true });
        await vps.stop();
        server = undefined;
      }
    },
    180_000,
  );

  test.skipIf(!mounted)(
    "vps serve on a nearly full disk refuses at once with one line and exit 5",
    async () => {
      fill(1024 * 1024);
      const r = await runCli(serveArgs, { timeoutMs: 30_000 });
      rmSync(filler);
      expect(r.code).toBe(5);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`dionysus: the disk holding ${dir} is full (`);
    },
    60_000,
  );

  test.skipIf(!mounted)(
    "after a PANIC (a WAL segment cannot be created) every later query fails at once instead of spinning",
    async () => {
      const script = `
        import { sql } from "kysely";
        import { writeFileSync, statfsSync } from "node:fs";
        import { createVpsDatabase } from ${JSON.stringify(join(repoRoot, "src/vps/db/database.ts"))};
        const db = await createVpsDatabase({ data_dir: ${JSON.stringify(dir)} });
        let fatal = null;
        db.onFatal((e) => { fatal = e.message; });
        await sql\`create table if not exists scratch (x int)\`.execute(db.db);
        await sql\`insert into scratch values (0)\`.execute(db.db);
        const s = statfsSync(${JSON.stringify(mountPoint)});
        writeFileSync(${JSON.stringify(filler)}, Buffer.alloc(Number(s.bavail) * Number(s.bsize)));
        const errors = [];
        for (let i = 0; i < 12 && errors.length < 3; i++) {
          try {
            await sql\`insert into scratch values (1)\`.execute(db.db);
            await sql\`select pg_switch_wal()\`.execute(db.db);
          } catch (e) { errors.push({ code: e.code, message: e.message }); }
        }
        const ping = await db.ping();
        await db.close();
        console.log(JSON.stringify({ errors, fatal, ping }));
        process.exit(0);
      `;
      const proc = Bun.spawn([process.execPath, "-e", script], {
        cwd: repoRoot,
        stdout: "pipe",
        stderr: "pipe",
        timeout: 60_000,
      });
      const [out, err, code] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
        proc.exited,
      ]);
      expect({ code, err: err.slice(-500) }).toEqual({ code: 0, err: "" });
      const r = JSON.parse(out) as {
        errors: Array<{ code: string; message: string }>;
        fatal: string | null;
        ping: boolean;
      };
      expect(r.errors).toHaveLength(3);
      for (const e of r.errors) {
        expect(e.code).toBe("unavailable");
        expect(e.message).toContain(`the disk holding ${dir} is full`);
      }
      expect(r.fatal).toContain(`the disk holding ${dir} is full`);
      expect(r.ping).toBe(false);
    },
    90_000,
  );

  test.skipIf(!mounted)(
    "a start that PGlite fails (forced past the free-space check) exits with one line, never lingers",
    async () => {
      // The PANIC left a database whose recovery needs room that is not there.
      truncateSync(filler, Math.max(0, Bun.file(filler).size - 200 * 1024));
      const r = await runCli(serveArgs, {
        timeoutMs: 40_000,
        env: { DIONYSUS_DEBUG_VPS_MIN_FREE_BYTES: "0" },
      });
      expect(r.code).toBe(5);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`dionysus: the disk holding ${dir} is full`);

      rmSync(filler);
      server = await startVpsProcess(["--data-dir", dir]);
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    },
    90_000,
  );
});
