import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeConfig } from "../../src/core/config.ts";
import { DionysusError } from "../../src/core/errors.ts";
import { EdgeHealth } from "../../src/core/protocol/edge-api.ts";
import { type EdgeDaemon, startEdgeDaemon } from "../../src/edge/daemon.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import { canMountSmallDisk, edgeAuth, mountSmallDisk } from "../helpers/harness.ts";

const dirs: string[] = [];
const daemons: EdgeDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(over: Partial<EdgeConfig> = {}): EdgeConfig {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-daemon-"));
  dirs.push(dir);
  return EdgeConfig.parse({ data_dir: dir, port: 0, ...over });
}

async function start(cfg: EdgeConfig, extra: Partial<Parameters<typeof startEdgeDaemon>[0]> = {}) {
  const d = await startEdgeDaemon({ config: cfg, ...extra });
  daemons.push(d);
  return d;
}

async function rejection(p: Promise<unknown>): Promise<DionysusError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(DionysusError);
    return err as DionysusError;
  }
  throw new Error("expected a rejection");
}

describe("startEdgeDaemon", () => {
  test("listens on loopback, announces itself in daemon.json (owner-only) and removes it on stop", async () => {
    const cfg = config();
    const d = await start(cfg);
    expect(d.host).toBe("127.0.0.1");
    expect(d.port).toBeGreaterThan(0);
    expect(d.url).toBe(`http://127.0.0.1:${d.port}`);
    const health = EdgeHealth.parse(await (await fetch(`${d.url}/health`)).json());
    expect(health.device_id).toBe(d.store.deviceId);
    const file = join(cfg.data_dir, "daemon.json");
    expect(JSON.parse(readFileSync(file, "utf8"))).toMatchObject({
      pid: process.pid,
      port: d.port,
      host: "127.0.0.1",
    });
    expect(statSync(file).mode & 0o077).toBe(0);
    expect(statSync(join(cfg.data_dir, "edge.db")).mode & 0o077).toBe(0);
    await d.stop();
    expect(existsSync(file)).toBe(false);
    expect(
      await fetch(`${d.url}/health`).then(
        () => "answered",
        () => "refused",
      ),
    ).toBe("refused");
  });

  test("refuses a second daemon on the same data dir", async () => {
    const cfg = config();
    const first = await start(cfg);
    const err = await rejection(startEdgeDaemon({ config: cfg }));
    expect(err.code).toBe("busy");
    expect(err.message).toContain("already running");
    // The first one is unaffected.
    expect((await fetch(`${first.url}/health`)).status).toBe(200);
    expect(JSON.parse(readFileSync(join(cfg.data_dir, "daemon.json"), "utf8")).port).toBe(first.port);
  });

  test("a taken port is a clear busy error and leaves no daemon.json", async () => {
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("someone else") });
    try {
      const cfg = config({ port: other.port });
      const err = await rejection(startEdgeDaemon({ config: cfg }));
      expect(err.code).toBe("busy");
      expect(err.message).toContain(`port ${other.port}`);
      expect(existsSync(join(cfg.data_dir, "daemon.json"))).toBe(false);
    } finally {
      await other.stop(true);
    }
  });

  test("a database with corrupt pages is refused after the background check, byte-identical", async () => {
    const cfg = config();
    const path = join(cfg.data_dir, "edge.db");
    const store = createSqliteStore({ path });
    for (let i = 0; i < 300; i++)
      store.create({ content: `memory ${i} `.repeat(30), kind: "episodic", tags: [], metadata: {} });
    store.close();
    const bytes = readFileSync(path);
    // Break the header of every b-tree page after the schema page.
    for (let page = 2; page * 4096 < bytes.length; page++) bytes[page * 4096] = 0xff;
    writeFileSync(path, bytes);
    const err = await rejection(startEdgeDaemon({ config: cfg }));
    expect(err.code).toBe("db_corrupt");
    expect(readFileSync(path).equals(bytes)).toBe(true);
    expect(existsSync(join(cfg.data_dir, "daemon.json"))).toBe(false);
  });

  test("plugs in the sync engine's hooks", async () => {
    const cfg = config();
    const calls: string[] = [];
    const d = await start(cfg, {
      hooks: {
        onStart: () => {
          calls.push("start");
        },
        onStop: () => {
          calls.push("stop");
        },
        sync: {
          onLocalWrite: () => {
            calls.push("write");
          },
          online: () => true,
          auth: () => "ok",
          status: () => ({ last_success: "never" }),
          syncNow: async () => ({}),
        },
      },
    });
    const res = await fetch(`${d.url}/v1/memories`, {
      method: "POST",
      headers: edgeAuth(cfg.data_dir, { "Content-Type": "application/json" }),
      body: JSON.stringify({ content: "hooked" }),
    });
    expect(res.status).toBe(201);
    expect(EdgeHealth.parse(await (await fetch(`${d.url}/health`)).json())).toMatchObject({
      online: true,
      auth: "ok",
    });
    expect(
      await (await fetch(`${d.url}/v1/sync/status`, { headers: edgeAuth(cfg.data_dir) })).json(),
    ).toMatchObject({
      queue: { queued: 1 },
      last_success: "never",
    });
    await d.stop();
    expect(calls).toEqual(["start", "write", "stop"]);
  });

  test("puts a batch left syncing by a crash back in the queue on start", async () => {
    const cfg = config();
    const store = createSqliteStore({ path: join(cfg.data_dir, "edge.db") });
    store.create({ content: "in flight when we crashed", kind: "episodic", tags: [], metadata: {} });
    store.claimBatch(10);
    store.close();
    const d = await start(cfg);
    expect(d.store.queueCounts()).toMatchObject({ queued: 1, syncing: 0 });
  });

  test("holds an OS lock on daemon.lock: with daemon.json gone a second start is still refused, until stop", async () => {
    const cfg = config();
    const first = await start(cfg);
    rmSync(join(cfg.data_dir, "daemon.json"));
    const err = await rejection(startEdgeDaemon({ config: cfg }));
    expect(err.code).toBe("busy");
    expect(err.message).toContain("already running");
    expect(err.message).toContain(`pid ${process.pid}`);
    expect(existsSync(join(cfg.data_dir, "daemon.json"))).toBe(false);
    expect((await fetch(`${first.url}/health`)).status).toBe(200);
    await first.stop();
    const again = await start(cfg);
    expect((await fetch(`${again.url}/health`)).status).toBe(200);
  });

  test("the API needs the token from <data_dir>/api-token (0600), kept across restarts", async () => {
    const cfg = config();
    const d = await start(cfg);
    const tokenFile = join(cfg.data_dir, "api-token");
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    expect((await fetch(`${d.url}/v1/memories`)).status).toBe(401);
    expect((await fetch(`${d.url}/v1/memories`, { headers: edgeAuth(cfg.data_dir) })).status).toBe(200);
    const token = readFileSync(tokenFile, "utf8");
    await d.stop();
    const d2 = await start(cfg);
    expect(readFileSync(tokenFile, "utf8")).toBe(token);
    expect((await fetch(`${d2.url}/v1/memories`, { headers: edgeAuth(cfg.data_dir) })).status).toBe(200);
  });

  test("a non-loopback host is refused unless allowRemote; the bound address is what daemon.json says", async () => {
    const cfg = config({ host: "0.0.0.0" });
    const err = await rejection(startEdgeDaemon({ config: cfg }));
    expect(err.code).toBe("invalid_input");
    expect(err.message).toContain("--allow-remote");
    expect(existsSync(join(cfg.data_dir, "daemon.json"))).toBe(false);
    const d = await start(cfg, { allowRemote: true });
    expect(d).toMatchObject({ host: "0.0.0.0", remote: true, url: `http://127.0.0.1:${d.port}` });
    expect(JSON.parse(readFileSync(join(cfg.data_dir, "daemon.json"), "utf8")).host).toBe("0.0.0.0");
    const local = await start(config({ host: "localhost" }));
    expect(local.remote).toBe(false);
    expect(["127.0.0.1", "::1"]).toContain(local.host);
  });
});

describe("startEdgeDaemon on a full disk", () => {
  test.skipIf(!canMountSmallDisk())(
    "daemon.json that cannot be written leaves no file behind, empty or not (needs root to mount a tmpfs)",
    async () => {
      const disk = mountSmallDisk("1m")!;
      const dir = join(disk.dir, "data");
      const cfg = EdgeConfig.parse({ data_dir: dir, port: 0 });
      // The database lives elsewhere; the token and the lock file exist from an earlier start.
      const store = createSqliteStore({ path: join(config().data_dir, "edge.db") });
      try {
        await (await startEdgeDaemon({ config: cfg, store })).stop();
        disk.fill();
        const err = await rejection(startEdgeDaemon({ config: cfg, store }));
        expect(err.code).toBe("unavailable");
        expect(err.message).toContain("is full");
        expect(err.message).not.toMatch(/move|corrupt/i);
        expect(readdirSync(dir).sort()).toEqual(["api-token", "daemon.lock"]);
        // Once there is room again, it starts.
        disk.unfill();
        await (await startEdgeDaemon({ config: cfg, store })).stop();
      } finally {
        store.close();
        disk.unmount();
      }
    },
  );
});
