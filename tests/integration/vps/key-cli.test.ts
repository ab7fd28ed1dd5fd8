/**
 * `dionysus vps key list | revoke` as real processes on an embedded (PGlite) data dir, through a
 * running server's admin API and then directly; and what `vps serve` says and links to when
 * `public_url` is not set.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { API_KEY_GRANT, DeviceAuthorizationResponse } from "../../../src/core/protocol/auth.ts";
import { runCli, startVpsProcess, type VpsProcess } from "../../helpers/harness.ts";

describe("dionysus vps key list / revoke", () => {
  let dir: string;
  let server: VpsProcess | undefined;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dionysus-keys-"));
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const exchange = (url: string, key: string) =>
    fetch(`${url}/v1/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: API_KEY_GRANT, api_key: key, device_id: "kdev" }),
    });

  test("through the running server: list shows prefixes, revoke stops the key", async () => {
    server = await startVpsProcess(["--data-dir", dir]);
    expect(
      (await runCli(["vps", "user", "add", "kim", "--data-dir", dir, "--password", "kim-password"])).code,
    ).toBe(0);
    const k1 = JSON.parse(
      (await runCli(["vps", "key", "create", "kim", "--data-dir", dir, "--json"])).stdout,
    ) as {
      id: string;
      key: string;
      prefix: string;
    };
    const k2 = JSON.parse(
      (await runCli(["vps", "key", "create", "kim", "--data-dir", dir, "--json"])).stdout,
    ) as {
      id: string;
      key: string;
    };
    const list = await runCli(["vps", "key", "list", "kim", "--data-dir", dir]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(k1.id);
    expect(list.stdout).toContain(k1.prefix);
    expect(list.stdout).not.toContain(k1.key);
    expect((await exchange(server.url, k1.key)).status).toBe(200);

    const revoke = await runCli(["vps", "key", "revoke", "kim", k1.prefix, "--data-dir", dir]);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toContain(`revoked API key ${k1.id}`);
    expect((await exchange(server.url, k1.key)).status).toBe(400);
    expect((await exchange(server.url, k2.key)).status).toBe(200);
    const unknown = await runCli(["vps", "key", "revoke", "kim", "dny_nope", "--data-dir", dir]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain("no API key");

    // No public_url: the sign-in link is the listening address, whatever Host the request had.
    const started = await fetch(`${server.url}/v1/auth/device`, {
      method: "POST",
      headers: { "content-type": "application/json", host: "evil.example" },
      body: JSON.stringify({ device_id: "tv" }),
    });
    const d = DeviceAuthorizationResponse.parse(await started.json());
    expect(d.verification_uri).toBe(`${server.url}/device`);
    await server.stop();
    const stderr = await new Response(server.proc.stderr as ReadableStream).text();
    server = undefined;
    expect(stderr).toContain("public_url is not set");
  }, 120_000);

  test("directly on the data dir: list --json shows the revoked key", async () => {
    const r = await runCli(["vps", "key", "list", "kim", "--data-dir", dir, "--json"]);
    expect(r.code).toBe(0);
    const keys = JSON.parse(r.stdout) as Array<{ revoked_at: string | null }>;
    expect(keys).toHaveLength(2);
    expect(keys.map((k) => k.revoked_at !== null)).toEqual([true, false]);
    const again = await runCli([
      "vps",
      "key",
      "revoke",
      "kim",
      JSON.parse(r.stdout)[1].id,
      "--data-dir",
      dir,
      "--json",
    ]);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).revoked_at).not.toBeNull();
  }, 60_000);
});
