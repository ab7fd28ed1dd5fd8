/** The sync protocol version is reported where a user or a script can see it: the VPS's
 * `GET /health` and `dionysus --version --json`. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { asksVersionJson } from "../../src/cli/program.ts";
import { PROTOCOL_VERSION } from "../../src/core/protocol/sync.ts";
import { VERSION } from "../../src/core/version.ts";
import { runCli } from "../helpers/harness.ts";
import { makeTestApp, openTestBackend, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

describe("the sync protocol version", () => {
  let backend: TestBackend;
  let t: TestApp;
  beforeAll(async () => {
    backend = await openTestBackend();
    t = await makeTestApp(backend);
  });
  afterAll(async () => {
    await t?.stop();
    await backend?.close();
  });

  test("GET /health on the VPS reports it next to the version", async () => {
    const res = await t.req("/health");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      status: "ok",
      version: VERSION,
      protocol_version: PROTOCOL_VERSION,
      database: "ok",
    });
  });

  test("dionysus --version --json prints both; --version alone stays the plain version", async () => {
    for (const args of [
      ["--version", "--json"],
      ["--json", "-V"],
    ]) {
      const r = await runCli(args);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ version: VERSION, protocol_version: PROTOCOL_VERSION });
    }
    const plain = await runCli(["--version"]);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toBe(VERSION);
  });

  test("only --version with --json, and nothing else, asks for the JSON form", () => {
    expect(asksVersionJson(["--version", "--json"])).toBe(true);
    expect(asksVersionJson(["--version"])).toBe(false);
    expect(asksVersionJson(["status", "--json"])).toBe(false);
    expect(asksVersionJson(["status", "--json", "--version"])).toBe(false);
  });
});
