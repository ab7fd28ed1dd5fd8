/**
 * The admin CLI as real processes on an embedded (PGlite) data dir: directly when no server runs,
 * and through the running server's loopback admin API while `vps serve` holds the data dir.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_GRANT } from "../../src/core/protocol/auth.ts";
import { runCli, startVpsProcess, type VpsProcess } from "../helpers/harness.ts";

describe("dionysus vps admin commands (PGlite)", () => {
  let dir: string;
  let server: VpsProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dionysus-cli-"));
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("while vps serve runs, admin commands go through its admin API", async () => {
    server = await startVpsProcess(["--data-dir", dir]);
    const file = join(dir, "vps.json");
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const add = await runCli(["vps", "user", "add", "frank", "--data-dir", dir, "--json"], {
      input: "frank-password\n",
    });
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout)).toMatchObject({ name: "frank" });
    const dup = await runCli(["vps", "user", "add", "frank", "--data-dir", dir, "--password", "whatever-pw"]);
    expect(dup.code).toBe(1);
    expect(dup.stderr).toContain("already exists");
    const short = await runCli(["vps", "user", "add", "gina", "--data-dir", dir, "--password", "short"]);
    expect(short.code).toBe(2);

    const key = await runCli(["vps", "key", "create", "frank", "--data-dir", dir]);
    expect(key.code).toBe(0);
    const apiKey = key.stdout.trim();
    expect(apiKey).toMatch(/^dny_/);
    expect(key.stderr).toContain("shown once");

    const tok = await fetch(`${server.url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        grant_type: API_KEY_GRANT,
        api_key: apiKey,
        device_id: "frank-laptop",
        platform: "linux",
      }),
    });
    expect(tok.status).toBe(200);

    const devices = await runCli(["vps", "devices", "frank", "--data-dir", dir]);
    expect(devices.code).toBe(0);
    expect(devices.stdout).toContain("frank-laptop");
    const unknown = await runCli(["vps", "devices", "nobody", "--data-dir", dir]);
    expect(unknown.code).toBe(3);
    const revoke = await runCli(["vps", "revoke", "frank-laptop", "--data-dir", dir, "--json"]);
    expect(revoke.code).toBe(0);
    expect(JSON.parse(revoke.stdout)).toMatchObject({ device_id: "frank-laptop" });
    expect(JSON.parse(revoke.stdout).revoked_at).not.toBeNull();

    const second = await runCli(["vps", "serve", "--port", "0", "--data-dir", dir]);
    expect(second.code).toBe(5);
    expect(second.stderr).toContain("one process only");
    // The server's own log never shows the key or the password.
    const logs = server.lines.join("\n");
    expect(logs).not.toContain(apiKey);
    expect(logs).not.toContain("frank-password");
  }, 90_000);

  test("with the server stopped, the same commands open the data dir directly", async () => {
    await server?.stop();
    server = undefined;
    expect(existsSync(join(dir, "vps.json"))).toBe(false);
    const devices = await runCli(["vps", "devices", "frank", "--data-dir", dir, "--json"]);
    expect(devices.code).toBe(0);
    expect(JSON.parse(devices.stdout)).toEqual([
      expect.objectContaining({ device_id: "frank-laptop", platform: "linux" }),
    ]);
    const migrate = await runCli(["vps", "migrate", "--data-dir", dir]);
    expect(migrate.code).toBe(0);
    expect(migrate.stdout).toContain("already up to date");
  }, 60_000);
});
