/**
 * The daemon's `/mcp` (Streamable HTTP), end to end: a real `dionysus serve` and the SDK's own
 * Streamable HTTP client. The same Host, Origin and token checks as `/v1/*` (a foreign Host or
 * Origin gets exactly the answer `/v1/memories` gets), remember then recall, bad arguments,
 * the VPS tools failing with the reason, sessions (one per client, unknown ids refused).
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { edgeAuth, scratch, serve } from "../helpers/harness.ts";

setDefaultTimeout(60_000);

const tmp = scratch();
const clients: Client[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await tmp.cleanup();
});

async function daemon() {
  const dir = tmp.dir();
  const d = tmp.track(await serve(dir));
  return { dir, url: d.url };
}

async function connect(url: string, dir: string, name = "Cursor") {
  const transport = new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
    requestInit: { headers: edgeAuth(dir) },
  });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return { client, transport };
}

const call = async (client: Client, name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;
const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");

/** An MCP initialize request as a client would POST it. */
const initialize = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
});

describe("/mcp on the edge daemon", () => {
  test("tools over Streamable HTTP: list, remember then recall, bad arguments, VPS tools failing with the reason", async () => {
    const { dir, url } = await daemon();
    const { client } = await connect(url, dir);
    expect((await client.listTools()).tools).toHaveLength(9);

    const r = await call(client, "remember", { content: "Ana likes jazz", tags: ["ana", "music"] });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({
      memory: { source: "mcp:cursor", scope: null, private: false },
    });
    const id = (r.structuredContent as { memory: { id: string } }).memory.id;
    // Written into the daemon's store: the local API sees it.
    expect((await fetch(`${url}/v1/memories/${id}`, { headers: edgeAuth(dir) })).status).toBe(200);

    const found = await call(client, "recall", { query: "jazz", limit: 5 });
    expect(found.structuredContent).toMatchObject({ routed: "local", results: [{ memory: { id } }] });

    const bad = await call(client, "recall", { query: "jazz", limit: 101 });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toContain("limit must be 1..100 at limit");
    const blank = await call(client, "remember", { content: "" });
    expect(blank.isError).toBe(true);
    expect(text(blank)).toContain("content must not be empty");
    const all = await call(client, "recent", { limit: 100 });
    expect((all.structuredContent as { memories: unknown[] }).memories).toHaveLength(1);

    for (const [tool, args] of [
      ["graph_query", { entity: "Ana" }],
      ["consolidate", {}],
      ["ask", { question: "What music does Ana like?" }],
      ["recall", { query: "jazz", route: "vps" }],
    ] as const) {
      const res = await call(client, tool, args);
      expect(res.isError, tool).toBe(true);
      expect(text(res)).toMatch(/^unavailable: .*not logged in to a VPS/);
    }
  });

  test("the daemon's default scope (DIONYSUS_SCOPE) applies to /mcp as to /v1/*; filters narrow recall", async () => {
    const dir = tmp.dir();
    writeFileSync(join(dir, "config.json"), JSON.stringify({ scope: "home" }));
    const { url } = tmp.track(await serve(dir));
    const { client } = await connect(url, dir, "Claude Desktop");
    const home = await call(client, "remember", { content: "water the basil", tags: ["garden"] });
    expect(home.structuredContent).toMatchObject({ memory: { scope: "home", source: "mcp:claude-desktop" } });
    await call(client, "remember", { content: "water the office ficus", scope: "work" });
    const local = await fetch(`${url}/v1/memories`, {
      method: "POST",
      headers: edgeAuth(dir, { "content-type": "application/json" }),
      body: JSON.stringify({ content: "water the lawn", scope: "home/garden" }),
    });
    expect(((await local.json()) as { source: string }).source).toBe("api");

    const count = async (args: Record<string, unknown>) =>
      (
        (await call(client, "recall", { query: "water", ...args })).structuredContent as {
          results: unknown[];
        }
      ).results.length;
    expect(await count({})).toBe(2); // home and home/garden: the default scope and below
    expect(await count({ filter: { scope: "*" } })).toBe(3);
    expect(await count({ filter: { scope: "work" } })).toBe(1);
    expect(await count({ filter: { tags: ["garden"] } })).toBe(1);
    expect(await count({ filter: { source: "api", scope: "*" } })).toBe(1);
    const bad = await call(client, "recall", { query: "water", filter: { scope: "*", colour: "red" } });
    expect(bad.isError).toBe(true);
    expect(text(bad)).toContain("colour");
  });

  test("a foreign Host or Origin, and a missing or wrong token, get on /mcp exactly what /v1/* gets", async () => {
    const { dir, url } = await daemon();
    const post = (path: string, headers: Record<string, string>) =>
      fetch(`${url}${path}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
        body: path === "/mcp" ? initialize : JSON.stringify({ content: "planted" }),
      });
    const cases: Array<[string, Record<string, string>, number]> = [
      ["foreign Host", edgeAuth(dir, { Host: "evil.example" }), 403],
      ["foreign Host with a loopback port", edgeAuth(dir, { Host: "rebind.example:8080" }), 403],
      ["foreign Origin", edgeAuth(dir, { Origin: "https://evil.example" }), 403],
      ["cross-site fetch without Origin", edgeAuth(dir, { "Sec-Fetch-Site": "cross-site" }), 403],
      ["no token", {}, 401],
      ["wrong token", { Authorization: "Bearer nope" }, 401],
    ];
    for (const [what, headers, status] of cases) {
      const api = await post("/v1/memories", headers);
      const mcp = await post("/mcp", headers);
      expect([what, mcp.status]).toEqual([what, status]);
      expect(mcp.status).toBe(api.status);
      expect(mcp.headers.get("content-type")).toContain("application/problem+json");
      const a = (await api.json()) as { code: string; detail: string };
      const m = (await mcp.json()) as { code: string; detail: string };
      expect(m.code).toBe(a.code);
      expect(m.detail).toBe(a.detail);
    }
    // Nothing was planted by any of them.
    const list = await fetch(`${url}/v1/memories`, { headers: edgeAuth(dir) });
    expect(await list.json()).toEqual({ memories: [] });
    // The daemon's own origin is accepted, as on /v1/*.
    const own = await post("/mcp", edgeAuth(dir, { Origin: url }));
    expect(own.status).toBe(200);
  });

  test("an allowed origin gets CORS for the MCP headers (preflight, and the session id readable)", async () => {
    const dir = tmp.dir();
    writeFileSync(join(dir, "config.json"), JSON.stringify({ allowed_origins: ["https://app.example"] }));
    const { url } = tmp.track(await serve(dir));
    const pre = await fetch(`${url}/mcp`, {
      method: "OPTIONS",
      headers: {
        Origin: "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-session-id, mcp-protocol-version",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect(pre.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("mcp-session-id");
    const init = await fetch(`${url}/mcp`, {
      method: "POST",
      headers: edgeAuth(dir, {
        Origin: "https://app.example",
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
      }),
      body: initialize,
    });
    expect(init.status).toBe(200);
    expect(init.headers.get("mcp-session-id")).toBeTruthy();
    expect(init.headers.get("access-control-expose-headers")?.toLowerCase()).toContain("mcp-session-id");
  });

  test("each client gets its own session; an unknown or ended session is refused", async () => {
    const { dir, url } = await daemon();
    const a = await connect(url, dir, "Claude Desktop");
    const b = await connect(url, dir, "Zed");
    expect(a.transport.sessionId).toBeDefined();
    expect(a.transport.sessionId).not.toBe(b.transport.sessionId);
    await call(a.client, "remember", { content: "from a" });
    expect((await call(b.client, "recall", { query: "from" })).structuredContent).toMatchObject({
      results: [{ memory: { content: "from a" } }],
    });

    const stale = await fetch(`${url}/mcp`, {
      method: "POST",
      headers: edgeAuth(dir, {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": "no-such-session",
      }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/list" }),
    });
    expect(stale.status).toBe(404);

    const ended = a.transport.sessionId!;
    await a.transport.terminateSession();
    const after = await fetch(`${url}/mcp`, {
      method: "POST",
      headers: edgeAuth(dir, {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-session-id": ended,
      }),
      body: JSON.stringify({ jsonrpc: "2.0", id: 3, method: "tools/list" }),
    });
    expect(after.status).toBe(404);
    // The other session is unaffected.
    expect((await b.client.listTools()).tools).toHaveLength(9);
  });
});
