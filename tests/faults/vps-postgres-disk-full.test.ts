/**
 * The VPS's PostgreSQL (a private server) on a disk that fills up: a small tmpfs mounted for the
 * test (needs root; without it the test is skipped and says so). Real `dionysus vps serve` and
 * edge daemon processes. A push that the database cannot store is answered 503 with the reason
 * (not a 500 "internal error"), the device keeps the write queued and says why in its sync
 * status, reads go on, and once space is freed the write arrives.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { edge, edgeState, expectHealed, startVps, write } from "../helpers/fault-world.ts";
import { eventually, tempDir } from "../helpers/harness.ts";
import { privatePostgresUnavailable, startPrivatePostgres } from "../helpers/private-postgres.ts";

setDefaultTimeout(300_000);

const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const mountPoint = mkdtempSync(join(tmpdir(), "dionysus-pgfull-"));
const pgMissing = privatePostgresUnavailable();
const mounted =
  pgMissing === undefined &&
  process.platform === "linux" &&
  spawnSync("mount", ["-t", "tmpfs", "-o", "size=120m,mode=0755", "tmpfs", mountPoint]).status === 0;
cleanups.push(() => {
  if (mounted) spawnSync("umount", ["-l", mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});
if (mounted) chmodSync(mountPoint, 0o755);
const filler = join(mountPoint, "filler");

const free = () => {
  const s = statfsSync(mountPoint);
  return Number(s.bavail) * Number(s.bsize);
};

const why = pgMissing ?? "cannot mount a tmpfs here (needs root on Linux)";
const title = mounted
  ? "the VPS's PostgreSQL on a full disk (120 MiB tmpfs)"
  : `the VPS's PostgreSQL on a full disk: SKIPPED, ${why}`;

describe(title, () => {
  test.skipIf(!mounted)(
    "a push the database cannot store is a 503 with the reason; the device keeps the write and delivers it once space is freed",
    async () => {
      const pg = startPrivatePostgres(mountPoint);
      cleanups.push(() => pg.destroy());
      const dir = tempDir("dionysus-pgfull-");
      cleanups.push(() => dir.cleanup());
      const vps = await startVps({ databaseUrl: pg.url, dataDir: `${dir.path}/vps` });
      cleanups.push(() => vps.stop("SIGKILL"));
      const a = edge("laptop", `${dir.path}/a`);
      await a.start();
      cleanups.push(() => a.stop("SIGKILL"));
      await a.login(vps.url, vps.apiKey);
      const acked = await write(a, ["written while the database had room"]);
      await expectHealed(vps, [a], acked, 60_000);

      // Fill the disk, then write memories too large to fit in what is left of it (random
      // base64, so that TOAST cannot compress it away).
      writeFileSync(filler, Buffer.alloc(Math.max(0, free() - 256 * 1024)));
      const bulky = () => Buffer.from(crypto.getRandomValues(new Uint8Array(60_000))).toString("base64");
      const big = await write(
        a,
        Array.from({ length: 8 }, () => `too big for the disk: ${bulky()}`),
      );
      expect(big.size).toBe(8);
      for (const [k, v] of big) acked.set(k, v);

      const failed = await eventually(
        async () => {
          const [r] = await a.api<{ consecutive_failures: number; last_error: string | null }>([
            { method: "GET", path: "/v1/sync/status" },
          ]);
          return r!.body.consecutive_failures >= 1 ? r!.body : undefined;
        },
        60_000,
        "the laptop to see its push fail",
      );
      expect(failed.last_error).toContain("disk is full");
      // Nothing was lost or given up on: the writes wait in the queue, none marked failed.
      const queue = edgeState(a.dataDir).queue;
      expect(queue.failed).toBe(0);
      expect(queue.queued + queue.syncing).toBe(8);
      expect(vps.running()).toBe(true);
      expect((await fetch(`${vps.url}/health`)).status).toBe(200);
      expect(vps.output()).toContain("database unavailable");

      rmSync(filler);
      const [run] = await a.api([{ method: "POST", path: "/v1/sync/run" }]);
      expect(run!.status).toBe(200);
      await expectHealed(vps, [a], acked, 120_000);
    },
  );
});
