/**
 * The compiled binary runs the VPS on embedded PGlite: PGlite's WebAssembly and data bundle must be
 * embedded in it (they cannot be found on disk next to a single-file executable).
 */
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compiledBinary } from "../helpers/compiled.ts";

const work = mkdtempSync(join(tmpdir(), "dionysus-compiled-"));
let server: ReturnType<typeof Bun.spawn> | undefined;

afterAll(async () => {
  if (server && server.exitCode === null) {
    server.kill("SIGKILL");
    await server.exited;
  }
  rmSync(work, { recursive: true, force: true });
});

test("bun build --compile, then the binary serves the VPS on PGlite from another directory", async () => {
  // Built with `bun run build`'s flags, once per source tree (tests/helpers/compiled.ts).
  const bin = compiledBinary();
  const dataDir = join(work, "data");
  // Run from a directory without node_modules, so nothing can be found on disk.
  server = Bun.spawn([bin, "vps", "serve", "--port", "0", "--host", "127.0.0.1", "--data-dir", dataDir], {
    cwd: work,
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, DATABASE_URL: "" },
  });
  const file = join(dataDir, "vps.json");
  const deadline = Date.now() + 90_000;
  while (!existsSync(file) && Date.now() < deadline && server.exitCode === null) await Bun.sleep(100);
  expect(existsSync(file)).toBe(true);
  const { admin_url } = JSON.parse(readFileSync(file, "utf8")) as { admin_url: string };
  const health = await fetch(`${admin_url}/health`);
  expect(await health.json()).toMatchObject({ status: "ok", database: "ok" });
  const add = Bun.spawnSync(
    [bin, "vps", "user", "add", "zed", "--password", "zed-password", "--data-dir", dataDir],
    {
      cwd: work,
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  expect(add.exitCode).toBe(0);
  expect(add.stdout.toString()).toContain("added user zed");
  server.kill("SIGTERM");
  expect(await server.exited).toBe(0);
  expect(existsSync(file)).toBe(false);
}, 120_000);
