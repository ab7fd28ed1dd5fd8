/**
 * Who can reach an edge daemon and its data dir, end to end: the API token, `--allow-remote`,
 * one daemon per data dir (OS lock), a full disk, and `login` over plain http.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, rmSync, statfsSync, statSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { join } from "node:path";
import { LocalMemory } from "../../src/core/memory.ts";
import {
  bun,
  canMountSmallDisk,
  cleanEnv,
  edgeAuth,
  edgeToken,
  eventually,
  freePort,
  mountSmallDisk,
  runCli,
  scratch,
  serve,
  startDaemon,
} from "../helpers/harness.ts";

setDefaultTimeout(60_000);

const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...opts, baseEnv: cleanEnv() });

const tmp = scratch();
afterEach(() => tmp.cleanup());

const ok = (r: { code: number; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
};

/** A refused command prints exactly one line on stderr and nothing on stdout. */
function refused(r: { code: number; stdout: string; stderr: string }, code: number, mentions: string) {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("dionysus: ");
  expect(lines[0]!.toLowerCase()).toContain(mentions.toLowerCase());
  return lines[0]!;
}

/** A non-loopback IPv4 address of this machine, if it has one. */
function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  return undefined;
}

const isRoot = process.getuid?.() === 0;
const hasSetpriv = Bun.which("setpriv") !== null;

describe("the local API token", () => {
  test("serve creates <data_dir>/api-token (0600) once; the API needs it, the CLI uses it", async () => {
    const dir = tmp.dir();
    const d = tmp.track(await serve(dir));
    const token = edgeToken(dir);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(join(dir, "api-token")).mode & 0o777).toBe(0o600);

    expect((await fetch(`${d.url}/health`)).status).toBe(200);
    const anon = await fetch(`${d.url}/v1/memories`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get("content-type")).toContain("application/problem+json");
    const planted = await fetch(`${d.url}/v1/memories`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ content: "planted" }),
    });
    expect(planted.status).toBe(401);

    const ing = await cli(["ingest", "--json", "--data-dir", dir], {
      input: "through the daemon, with the token",
    });
    ok(ing);
    const m = LocalMemory.parse(JSON.parse(ing.stdout));
    const list = await cli(["list", "--json", "--data-dir", dir]);
    ok(list);
    expect(JSON.parse(list.stdout)).toMatchObject({ memories: [{ id: m.id }] });
    expect((await fetch(`${d.url}/v1/memories/${m.id}`, { headers: edgeAuth(dir) })).status).toBe(200);

    // The token survives a restart: scripts keep working.
    expect(await d.stop()).toBe(0);
    const d2 = tmp.track(await serve(dir));
    expect(edgeToken(dir)).toBe(token);
    expect((await fetch(`${d2.url}/v1/memories`, { headers: edgeAuth(dir) })).status).toBe(200);
  });

  test.skipIf(!isRoot || !hasSetpriv)(
    "another local user can neither read the token nor read or write memories (needs root and setpriv)",
    async () => {
      const dir = tmp.dir();
      const d = tmp.track(await serve(dir));
      ok(await cli(["ingest", "my private diary entry", "--data-dir", dir]));
      const script = `
        const out = {};
        try { require("node:fs").readFileSync(${JSON.stringify(join(dir, "api-token"))}, "utf8"); out.token = "read"; }
        catch (e) { out.token = e.code; }
        out.list = (await fetch(${JSON.stringify(`${d.url}/v1/memories`)})).status;
        out.write = (await fetch(${JSON.stringify(`${d.url}/v1/memories`)}, {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ content: "written by uid 65534" }),
        })).status;
        console.log(JSON.stringify(out));`;
      const proc = Bun.spawn(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bun, "-e", script],
        { cwd: "/", env: { PATH: process.env.PATH ?? "/usr/bin:/bin" }, stdout: "pipe", stderr: "pipe" },
      );
      const [stdout, stderr] = await Promise.all([
        new Response(proc.stdout).text(),
        new Response(proc.stderr).text(),
      ]);
      expect(await proc.exited, stderr).toBe(0);
      expect(JSON.parse(stdout)).toEqual({ token: "EACCES", list: 401, write: 401 });
      const list = await cli(["list", "--json", "--data-dir", dir]);
      ok(list);
      expect(
        (JSON.parse(list.stdout) as { memories: { content: string }[] }).memories.map((x) => x.content),
      ).toEqual(["my private diary entry"]);
    },
  );
});

describe("serve --host", () => {
  test("a non-loopback --host is refused without --allow-remote; nothing listens, no daemon.json", async () => {
    const dir = tmp.dir();
    const port = freePort();
    for (const host of ["0.0.0.0", "::", "192.0.2.10"]) {
      // (A serve that wrongly starts would run until this timeout.)
      const r = await cli(["serve", "--host", host, "--port", String(port), "--data-dir", dir], {
        timeoutMs: 15_000,
      });
      const line = refused(r, 2, "--allow-remote");
      expect(line).toContain(host);
    }
    expect(existsSync(join(dir, "daemon.json"))).toBe(false);
    expect(
      await fetch(`http://127.0.0.1:${port}/health`).then(
        () => "answered",
        () => "refused",
      ),
    ).toBe("refused");
  });

  test("--allow-remote on 0.0.0.0: the banner, the log and daemon.json say 0.0.0.0; the token is still required", async () => {
    const dir = tmp.dir();
    const port = freePort();
    const d = await startDaemon(
      ["serve", "--host", "0.0.0.0", "--allow-remote", "--port", String(port), "--data-dir", dir],
      { port, env: cleanEnv() },
    );
    try {
      // The banner is printed once the daemon is fully up, which can be just after /health answers.
      const out = await eventually(() => (d.output().includes("API token in") ? d.output() : undefined));
      expect(out).toContain(`listening on 0.0.0.0:${port} (reachable from other machines`);
      expect(out).toContain(
        `warning: the local API listens on 0.0.0.0:${port}, reachable from other machines`,
      );
      expect(out).not.toContain(`listening on http://127.0.0.1:${port}\n`);
      expect(JSON.parse(readFileSync(join(dir, "daemon.json"), "utf8"))).toMatchObject({
        host: "0.0.0.0",
        port,
      });
      expect((await fetch(`http://127.0.0.1:${port}/v1/memories`)).status).toBe(401);
      // The CLI still finds the daemon through loopback.
      const status = JSON.parse((await cli(["status", "--json", "--data-dir", dir])).stdout) as {
        mode: string;
      };
      expect(status.mode).toBe("daemon");
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  const lan = lanAddress();
  test.skipIf(lan === undefined)(
    "from another address (this machine's LAN address): 401 without the token, no browser session",
    async () => {
      const dir = tmp.dir();
      const port = freePort();
      const d = await startDaemon(
        ["serve", "--host", "0.0.0.0", "--allow-remote", "--port", String(port), "--data-dir", dir],
        { port, env: cleanEnv() },
      );
      try {
        const base = `http://${lan}:${port}`;
        expect((await fetch(`${base}/health`)).status).toBe(200);
        expect((await fetch(`${base}/v1/memories`)).status).toBe(401);
        expect((await fetch(`${base}/v1/memories`, { headers: edgeAuth(dir) })).status).toBe(200);
        // A ticket (asked for with the token) gets no session from another machine, nor does
        // the token pasted into the sign-in form.
        const ticket = async () => {
          const res = await fetch(`${base}/v1/session/ticket`, { method: "POST", headers: edgeAuth(dir) });
          return ((await res.json()) as { ticket: string }).ticket;
        };
        const t = await ticket();
        const session = await fetch(`${base}/session?ticket=${t}`);
        expect(session.status).toBe(403);
        expect(session.headers.get("set-cookie")).toBeNull();
        const form = await fetch(`${base}/session`, {
          method: "POST",
          redirect: "manual",
          headers: { Origin: base, "Content-Type": "application/x-www-form-urlencoded" },
          body: `token=${edgeAuth(dir).Authorization!.slice("Bearer ".length)}`,
        });
        expect(form.status).toBe(403);
        expect(form.headers.get("set-cookie")).toBeNull();
        // Over loopback the same daemon trades the same ticket for the session.
        expect(
          (await fetch(`http://127.0.0.1:${port}/session?ticket=${t}`)).headers.get("set-cookie"),
        ).toContain("HttpOnly");
      } finally {
        await d.stop();
      }
    },
  );

  test("--json reports the bound address; localhost binds loopback without --allow-remote", async () => {
    const dir = tmp.dir();
    const d = tmp.track(await serve(dir, ["--host", "localhost"]));
    const info = JSON.parse(readFileSync(join(dir, "daemon.json"), "utf8")) as { host: string };
    expect(["127.0.0.1", "::1"]).toContain(info.host);
    expect((await fetch(`${d.url}/health`)).status).toBe(200);
  });
});

describe("one daemon per data dir", () => {
  test("with daemon.json deleted, a second serve is still refused (OS lock); the first keeps serving", async () => {
    const dir = tmp.dir();
    const d = tmp.track(await serve(dir));
    rmSync(join(dir, "daemon.json"));
    const r = await cli(["serve", "--port", "0", "--data-dir", dir], { timeoutMs: 15_000 });
    const line = refused(r, 5, "already running");
    expect(line).toContain(`pid ${d.pid}`);
    expect((await fetch(`${d.url}/health`)).status).toBe(200);
    expect(existsSync(join(dir, "daemon.json"))).toBe(false);
    // Once the first one is gone (even killed), the lock is free.
    expect(await d.stop("SIGKILL")).not.toBe(0);
    const d2 = tmp.track(await serve(dir));
    expect((await fetch(`${d2.url}/health`)).status).toBe(200);
  });
});

describe("login over plain http", () => {
  test("warns (one line on stderr) for a non-loopback http:// URL, not for loopback or https", async () => {
    const dir = tmp.dir();
    const port = freePort(); // nothing listens: the login itself fails right after
    const remote = await cli([
      "login",
      `http://0.0.0.0:${port}`,
      "--api-key",
      "k",
      "--no-sync",
      "--data-dir",
      dir,
    ]);
    const lines = remote.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toBe(
      `dionysus: warning: http://0.0.0.0:${port} is plain http:// and not loopback: the API key, tokens and memories cross the network unencrypted; use https://`,
    );
    expect(remote.code).toBe(5);
    for (const url of [
      `http://127.0.0.1:${port}`,
      `http://localhost:${port}`,
      `http://[::1]:${port}`,
      `https://0.0.0.0:${port}`,
    ]) {
      const local = await cli(["login", url, "--api-key", "k", "--no-sync", "--data-dir", dir]);
      expect(local.code).toBe(5);
      expect(local.stderr).not.toContain("warning");
    }
  });
});

const canMount = canMountSmallDisk();

describe("a full disk", () => {
  test.skipIf(!canMount)(
    "reads keep working, writes and serve say the disk is full (never 'move the database'), and nothing is lost (needs root to mount a tmpfs)",
    async () => {
      const disk = mountSmallDisk()!;
      try {
        const dir = join(disk.dir, "data");
        ok(await cli(["ingest", "written before the disk filled up", "--data-dir", dir]));
        const first = await cli(["ingest", "--json", "--data-dir", dir], { input: "also kept" });
        ok(first);
        const kept = LocalMemory.parse(JSON.parse(first.stdout));
        disk.fill();
        expect(statfsSync(disk.dir).bavail).toBe(0);

        const list = await cli(["list", "--json", "--data-dir", dir]);
        ok(list);
        expect(list.stderr).toBe("");
        expect((JSON.parse(list.stdout) as { memories: unknown[] }).memories).toHaveLength(2);
        ok(await cli(["get", kept.id, "--data-dir", dir]));
        const recall = await cli(["recall", "disk", "--json", "--data-dir", dir]);
        ok(recall);
        expect(JSON.parse(recall.stdout)).toMatchObject({
          results: [{ memory: { content: "written before the disk filled up" } }],
        });
        const status = await cli(["status", "--json", "--data-dir", dir]);
        ok(status);
        expect(JSON.parse(status.stdout)).toMatchObject({ memories: 2, queue: { queued: 2 } });

        const write = await cli(["ingest", "one too many", "--data-dir", dir]);
        const line = refused(write, 5, "disk is full");
        expect(line).not.toMatch(/move|corrupt|fresh database/i);

        const s = await cli(["serve", "--port", "0", "--data-dir", dir]);
        const serveLine = refused(s, 5, "is full");
        expect(serveLine).not.toMatch(/move|corrupt|fresh database/i);
        expect(existsSync(join(dir, "daemon.json"))).toBe(false);
        expect(readdirSync(dir).filter((f) => f.includes(".tmp"))).toEqual([]);

        // Space again: everything is there, and writing works.
        disk.unfill();
        ok(await cli(["ingest", "after freeing space", "--data-dir", dir]));
        const after = await cli(["list", "--json", "--data-dir", dir]);
        ok(after);
        expect(
          (JSON.parse(after.stdout) as { memories: { content: string }[] }).memories
            .map((m) => m.content)
            .sort(),
        ).toEqual(["after freeing space", "also kept", "written before the disk filled up"]);
        const d = tmp.track(await serve(dir));
        expect((await fetch(`${d.url}/v1/memories`, { headers: edgeAuth(dir) })).status).toBe(200);
        expect(await d.stop()).toBe(0);
      } finally {
        disk.unmount();
      }
    },
  );

  test.skipIf(!canMount)(
    "with a daemon running when the disk fills up: reads answer, a write is a clear 'disk is full' (needs root to mount a tmpfs)",
    async () => {
      const disk = mountSmallDisk()!;
      try {
        const dir = join(disk.dir, "data");
        const d = tmp.track(await serve(dir));
        ok(await cli(["ingest", "before the disk filled up", "--data-dir", dir]));
        disk.fill();
        const list = await cli(["list", "--json", "--data-dir", dir]);
        ok(list);
        expect(JSON.parse(list.stdout)).toMatchObject({
          memories: [{ content: "before the disk filled up" }],
        });
        const line = refused(await cli(["ingest", "one too many", "--data-dir", dir]), 5, "disk is full");
        expect(line).not.toMatch(/move|corrupt|fresh database/i);
        disk.unfill();
        ok(await cli(["ingest", "after freeing space", "--data-dir", dir]));
        expect(await d.stop()).toBe(0);
      } finally {
        disk.unmount();
      }
    },
  );
});
