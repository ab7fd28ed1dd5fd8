/**
 * A real VPS server in this process (over a real socket, on a fresh PostgreSQL database), with
 * helpers to make users and to sign in edge stores with real sync engines.
 */
import { join } from "node:path";
import { Client } from "pg";
import { VpsConfig } from "../../src/core/config.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { SyncEngine, type SyncEngineOptions } from "../../src/edge/sync/engine.ts";
import { login } from "../../src/edge/sync/login.ts";
import { type RunningVps, readServerFile, startVpsServer } from "../../src/vps/server.ts";
import { createPgDatabase, tempDir } from "./harness.ts";

export interface InprocDevice {
  store: EdgeStore;
  engine: SyncEngine;
  dir: string;
  close(): Promise<void>;
}

export interface InprocVps {
  url: string;
  /** The VPS's PostgreSQL database. */
  databaseUrl: string;
  /** SQL on the VPS's database. */
  pg: Client;
  /** A new user; returns an API key. */
  newUser(): Promise<{ name: string; key: string }>;
  /** A signed-in edge store with a sync engine (not started: drive it with syncNow). */
  device(
    key: string,
    opts?: { maxContentBytes?: number; engine?: Partial<SyncEngineOptions>; now?: () => number },
  ): Promise<InprocDevice>;
  stop(): Promise<void>;
}

export async function startInprocVps(
  config: Partial<VpsConfig> = {},
  /** The VPS's wall clock (tests step it). */
  now?: () => number,
): Promise<InprocVps> {
  const db = await createPgDatabase();
  const vpsDir = tempDir("dionysus-vps-");
  const vps: RunningVps = await startVpsServer(
    VpsConfig.parse({
      data_dir: vpsDir.path,
      database_url: db.url,
      host: "127.0.0.1",
      port: 0,
      rate_limit_per_min: 1_000_000,
      ...config,
    }),
    { log: () => {}, ...(now ? { now } : {}) },
  );
  const file = readServerFile(vpsDir.path)!;
  const pg = new Client({ connectionString: db.url });
  await pg.connect();
  const url = `http://127.0.0.1:${vps.port}`;
  const admin = async <T>(path: string, body: unknown): Promise<T> => {
    const res = await fetch(`${file.admin_url}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${file.admin_token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`admin ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const devices: InprocDevice[] = [];
  return {
    url,
    databaseUrl: db.url,
    pg,
    async newUser() {
      const name = `h${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;
      await admin("/admin/users", { name, password: "correct horse battery" });
      const { key } = await admin<{ key: string }>("/admin/keys", { user: name });
      return { name, key };
    },
    async device(key, opts = {}) {
      const dir = tempDir("dionysus-edge-");
      const store = createSqliteStore({
        path: join(dir.path, "edge.db"),
        ...(opts.maxContentBytes ? { maxContentBytes: opts.maxContentBytes } : {}),
        ...(opts.now ? { now: opts.now } : {}),
      });
      await login({
        vpsUrl: url,
        dataDir: dir.path,
        store,
        apiKey: key,
        deviceName: "edge",
        platform: "test",
      });
      const engine = new SyncEngine({
        store,
        dataDir: dir.path,
        realtime: false,
        random: () => 0.5,
        // The device's one wall clock: the store stamps with it, the engine measures the VPS by it.
        ...(opts.now ? { now: opts.now } : {}),
        ...opts.engine,
      });
      const d: InprocDevice = {
        store,
        engine,
        dir: dir.path,
        async close() {
          await engine.stop();
          store.close();
          dir.cleanup();
        },
      };
      devices.push(d);
      return d;
    },
    async stop() {
      for (const d of devices.splice(0)) await d.close().catch(() => {});
      await pg.end();
      await vps.stop();
      await db.drop();
      vpsDir.cleanup();
    },
  };
}
