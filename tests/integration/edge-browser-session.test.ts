/**
 * The browser session of the edge daemon over a real socket (`startEdgeDaemon` in this process,
 * so its clock can be injected): `GET /session` gives nothing to a caller without a ticket, a
 * ticket from `POST /v1/session/ticket` works once and not after 60 s, the sign-in form takes
 * the token (only from the daemon's own Origin), and the cookie then reads the memories. The
 * same holds for `/mcp` and every other route: the cookie or the token, nothing else.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeConfig } from "../../src/core/config.ts";
import { apiTokenPath, readApiToken } from "../../src/edge/api-token.ts";
import { type EdgeDaemon, startEdgeDaemon } from "../../src/edge/daemon.ts";

let dir: string;
let daemon: EdgeDaemon;
let token: string;
let now = Date.parse("2026-11-30T04:00:00Z");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "dionysus-session-"));
  daemon = await startEdgeDaemon({
    config: EdgeConfig.parse({ data_dir: dir, port: 0 }),
    hooks: { now: () => now, log: () => {} },
  });
  token = readApiToken(dir)!;
  const res = await fetch(`${daemon.url}/v1/memories`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify({ content: "the secret plan" }),
  });
  expect(res.status).toBe(201);
});
afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = (path: string, headers: Record<string, string> = {}) =>
  fetch(`${daemon.url}${path}`, { headers, redirect: "manual" });

async function ticket(): Promise<string> {
  const res = await fetch(`${daemon.url}/v1/session/ticket`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { ticket: string }).ticket;
}

const cookieOf = (res: Response) => res.headers.get("set-cookie")?.split(";")[0];

async function expectRefused(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get("set-cookie")).toBeNull();
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  return (await res.json()) as { detail: string };
}

/** `origin: null` sends none. */
const signIn = (body: string, origin: string | null = daemon.url) =>
  fetch(`${daemon.url}/session`, {
    method: "POST",
    redirect: "manual",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      ...(origin === null ? {} : { Origin: origin }),
    },
    body,
  });

describe("GET /session over a socket", () => {
  test("without a ticket, or with a made-up one, it is refused and says how to get in", async () => {
    for (const path of ["/session", "/session?next=/", "/session?ticket=AAAA&next=/"]) {
      const body = await expectRefused(await get(path), 401);
      expect(body.detail).toContain("dionysus open");
      expect(body.detail).toContain(apiTokenPath(dir));
    }
  });

  test("a ticket works once, and only once; its cookie reads the memories", async () => {
    const t = await ticket();
    const first = await get(`/session?ticket=${t}&next=/`);
    expect(first.status).toBe(303);
    expect(first.headers.get("location")).toBe("/");
    const cookie = cookieOf(first);
    expect(cookie).toMatch(/^dionysus_session=/);
    await expectRefused(await get(`/session?ticket=${t}&next=/`), 401);
    const list = await get("/v1/memories", { Cookie: cookie! });
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).toContain("the secret plan");
    const page = await get("/", { Cookie: cookie! });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("the secret plan");
  });

  test("a ticket older than 60 s is refused (the daemon's clock injected)", async () => {
    const t = await ticket();
    now += 60_000;
    const body = await expectRefused(await get(`/session?ticket=${t}`), 401);
    expect(body.detail).toContain("expired");
    // One issued after the jump still works.
    expect((await get(`/session?ticket=${await ticket()}`)).status).toBe(204);
  });
});

describe("the sign-in page and its form over a socket", () => {
  test("a browser without a session gets the sign-in page naming the token file", async () => {
    const res = await get("/", { Accept: "text/html" });
    expect(res.status).toBe(401);
    expect(res.headers.get("set-cookie")).toBeNull();
    const html = await res.text();
    expect(html).toContain("dionysus open");
    expect(html).toContain(apiTokenPath(dir));
    expect(html).not.toContain("the secret plan");
  });

  test("the token sets the cookie; a wrong token does not", async () => {
    const wrong = await signIn("token=wrong-token");
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    expect(await wrong.text()).toContain("not this daemon&#39;s API token");
    const ok = await signIn(`token=${encodeURIComponent(token)}`);
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe("/");
    const list = await get("/v1/memories", { Cookie: cookieOf(ok)! });
    expect(list.status).toBe(200);
    expect(JSON.stringify(await list.json())).toContain("the secret plan");
  });

  test("a foreign Origin, or none, is refused even with the right token", async () => {
    for (const origin of ["http://evil.example", `http://localhost:${daemon.port + 1}`, "null", null])
      await expectRefused(await signIn(`token=${encodeURIComponent(token)}`, origin), 403);
  });
});

describe("no other way around the token", () => {
  test("/mcp and the API routes answer neither a bare loopback caller nor a forged cookie", async () => {
    const mcpInit = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "x", version: "1" } },
    });
    for (const headers of [
      {},
      { Cookie: "dionysus_session=forged" },
      { Authorization: "Bearer forged" },
    ] as Record<string, string>[]) {
      const mcp = await fetch(`${daemon.url}/mcp`, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json, text/event-stream",
          ...headers,
        },
        body: mcpInit,
      });
      await expectRefused(mcp, 401);
      for (const path of ["/v1/memories", "/v1/sync/status", "/v1/conflicts", "/mcp"])
        await expectRefused(await get(path, headers), 401);
      const ticketRes = await fetch(`${daemon.url}/v1/session/ticket`, { method: "POST", headers });
      await expectRefused(ticketRes, 401);
    }
  });
});
