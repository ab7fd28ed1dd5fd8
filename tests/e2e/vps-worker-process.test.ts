/**
 * The job worker off the API's event loop, with real processes on a real PostgreSQL: `vps serve`
 * runs it as a child process (`vps worker`) that does the jobs and dies with its parent;
 * `vps serve --no-worker` runs no worker, and a `vps worker` started alone does the jobs. On the
 * embedded database (PGlite) both are refused with one plain line.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "pg";
import { API_KEY_GRANT, TokenResponse } from "../../src/core/protocol/auth.ts";
import { PushResponse } from "../../src/core/protocol/sync.ts";
import { pidAlive } from "../../src/platform/file-lock.ts";
import {
  bun,
  cliEntry,
  createTestDatabase,
  eventually,
  repoRoot,
  runCli,
  startVpsProcess,
  TEST_DATABASE_URL,
  type TestDatabase,
  type VpsProcess,
} from "../helpers/harness.ts";
import { TestDevice } from "../helpers/memories.ts";

/** Pids of the live processes whose parent is `pid`. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch {}
  }
  return out;
}

describe.skipIf(!TEST_DATABASE_URL)("the VPS job worker in its own process", () => {
  let tdb: TestDatabase;
  let pg: Client;
  let key: string;
  const dirs: string[] = [];
  const running: VpsProcess[] = [];

  beforeAll(async () => {
    tdb = await createTestDatabase();
    expect((await runCli(["vps", "migrate", "--database-url", tdb.url])).code).toBe(0);
    expect(
      (
        await runCli(["vps", "user", "add", "wanda", "--database-url", tdb.url], {
          input: "wanda-password\n",
        })
      ).code,
    ).toBe(0);
    const k = await runCli(["vps", "key", "create", "wanda", "--database-url", tdb.url, "--json"]);
    key = (JSON.parse(k.stdout) as { key: string }).key;
    pg = new Client({ connectionString: tdb.url });
    await pg.connect();
  }, 90_000);

  afterAll(async () => {
    for (const p of running) await p.stop();
    await pg?.end();
    await tdb?.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const dataDir = () => {
    const d = mkdtempSync(join(tmpdir(), "dionysus-vpsw-"));
    dirs.push(d);
    return d;
  };

  async function push(base: string, deviceId: string, content: string): Promise<string> {
    const res = await fetch(`${base}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key, device_id: deviceId }),
    });
    const { access_token } = TokenResponse.parse(await res.json());
    const m = new TestDevice(deviceId).create(content);
    const r = await fetch(`${base}/v1/sync/push`, {
      method: "POST",
      headers: { authorization: `Bearer ${access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ mutations: [m] }),
    });
    expect(PushResponse.parse(await r.json()).results[0]!.status).toBe("applied");
    return m.id;
  }

  /** The statuses of the memory's embed and extract jobs (a finished one is deleted). */
  async function jobs(memoryId: string): Promise<string[]> {
    const r = await pg.query<{ status: string }>(
      "select status from jobs where memory_id = $1 order by kind",
      [memoryId],
    );
    return r.rows.map((x) => x.status);
  }

  /** True once a worker embedded the memory and extracted its entities. */
  async function worked(memoryId: string): Promise<true | undefined> {
    const e = await pg.query("select 1 from embeddings where memory_id = $1", [memoryId]);
    const g = await pg.query("select 1 from graph_extracted where memory_id = $1", [memoryId]);
    return e.rowCount && g.rowCount && (await jobs(memoryId)).length === 0 ? true : undefined;
  }

  test("vps serve runs the worker as a child that does the jobs and dies with its parent", async () => {
    const vps = await startVpsProcess(["--database-url", tdb.url, "--data-dir", dataDir()]);
    running.push(vps);
    const listening = vps.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.msg === "vps listening")!;
    expect(listening.worker).toBe("process");
    const child = listening.worker_pid as number;
    expect(childrenOf(vps.proc.pid)).toContain(child);

    const id = await push(vps.url, "laptop", "Ada met Grace in London to talk about compilers");
    await eventually(() => worked(id), 30_000, "the jobs done");
    // The child logged its start on the same output.
    await eventually(
      () =>
        vps.lines.some((l) => l.includes('"vps worker running"') && l.includes(`"pid":${child}`))
          ? true
          : undefined,
      10_000,
      "the child's start line",
    );

    // The parent dies without a chance to stop it: the child sees its stdin close and exits.
    vps.proc.kill("SIGKILL");
    await vps.proc.exited;
    await eventually(() => (pidAlive(child) ? undefined : true), 20_000, "the orphaned worker gone");
  });

  test("--no-worker serves the API alone; a vps worker started apart does the jobs", async () => {
    const vps = await startVpsProcess(["--database-url", tdb.url, "--data-dir", dataDir(), "--no-worker"]);
    running.push(vps);
    const listening = vps.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((e) => e.msg === "vps listening")!;
    expect(listening.worker).toBe("off");
    expect(childrenOf(vps.proc.pid)).toEqual([]);
    const id = await push(vps.url, "phone", "Linus wrote a kernel in Helsinki");
    expect(await jobs(id)).toEqual(["queued", "queued"]);

    const worker = Bun.spawn([bun, cliEntry, "vps", "worker", "--data-dir", dataDir()], {
      cwd: repoRoot,
      env: { ...process.env, DATABASE_URL: tdb.url },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    try {
      await eventually(() => worked(id), 30_000, "the jobs done");
    } finally {
      worker.kill("SIGTERM");
      expect(await worker.exited).toBe(0);
    }
  });

  test("on the embedded database, --no-worker and vps worker are refused with one plain line", async () => {
    const dir = dataDir();
    const serve = await runCli(["vps", "serve", "--no-worker", "--port", "0", "--data-dir", dir]);
    expect(serve.code).toBe(2);
    expect(serve.stderr.trim().split("\n")).toHaveLength(1);
    expect(serve.stderr).toContain("PGlite");
    const worker = await runCli(["vps", "worker", "--data-dir", dir]);
    expect(worker.code).toBe(2);
    expect(worker.stderr).toContain("one process only");
  });
});
