/**
 * The embedded (PGlite) VPS on a disk that fills up: a small tmpfs mounted for the test (needs
 * root; without it the tests are skipped and say so). Real `dionysus vps` processes, except the
 * PANIC case (WAL-only statements, which the write reserve lets through, on a full disk), which
 * runs in its own process so that a PGlite spinning forever cannot hang the run.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, statfsSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_GRANT } from "../../src/core/protocol/auth.ts";
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
async function signIn(
  vps: VpsProcess,
  user: string,
  size: number,
): Promise<{ push: () => Promise<Response>; auth: () => string }> {
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
  const push = () =>
    fetch(`${vps.url}/v1/sync/push`, {
      method: "POST",
      headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ mutations: [device.create(bulky())] }),
      signal: AbortSignal.timeout(30_000),
    });
  return { push, auth: () => `Bearer ${access_token}` };
}

const title = mounted
  ? "PGlite VPS on a full disk (100 MiB tmpfs)"
  : "PGlite VPS on a full disk: SKIPPED, cannot mount a tmpfs here (needs root on Linux)";

describe(title, () => {
  test.skipIf(!mounted)(
    "with less room than a WAL segment needs, writes answer 503 problem+json at once; reads and /health go on; freeing space heals it",
    async () => {
      expect((await runCli(["vps", "migrate", "--data-dir", dir])).code).toBe(0);
      server = await startVpsProcess(["--data-dir", dir]);
      const { push, auth } = await signIn(server, "dora", 300_000);
      // 20 MiB free: room enough for this write, but not for it and the next 16 MiB WAL segment.
      fill(20 * 1024 * 1024);
      try {
        const full = await push();
        expect(full.status).toBe(503);
        expect(full.headers.get("content-type")).toContain("application/problem+json");
        const problem = (await full.json()) as { code: string; detail: string };
        expect(problem.code).toBe("unavailable");
        expect(problem.detail).toContain(`the disk holding ${dir} is full`);
        expect((await fetch(`${server.url}/health`)).status).toBe(200);
        const pull = await fetch(`${server.url}/v1/sync/pull`, { headers: { authorization: auth() } });
        expect(pull.status).toBe(200);

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
        const s = statfsSync(${JSON.stringify(mountPoint)});
        writeFileSync(${JSON.stringify(filler)}, Buffer.alloc(Number(s.bavail) * Number(s.bsize)));
        const errors = [];
        for (let i = 0; i < 12 && errors.length < 3; i++) {
          try {
            await sql\`select pg_logical_emit_message(false, 'dionysus-test', 'x')\`.execute(db.db);
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
