/**
 * The MCP server in process (the SDK's in-memory transport): a VPS answer that never comes is
 * given up at the bound with `unavailable` (the backend here is a stub whose VPS calls never
 * settle: a VPS that hangs cannot be summoned on demand), the edge is opened once, as the client
 * that initialized, and the client's name becomes its `source` (`Claude Desktop`: `mcp:claude-desktop`).
 */
import { expect, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { createMcpServer, type McpBackend } from "../../src/edge/mcp/server.ts";

const never = () => new Promise<never>(() => {});

/** A stub edge whose VPS never answers; local reads are empty. */
const hangingVps: McpBackend = {
  create: never,
  get: never,
  forget: never,
  recent: async () => [],
  recall: never,
  graph: never,
  consolidate: never,
  ask: never,
  syncStatus: async () => ({ queue: { queued: 0, syncing: 0, synced: 0, failed: 0 } }),
};

async function connected(name: string, connect: (source: string) => Promise<McpBackend>) {
  const server = createMcpServer({ connect, vpsTimeoutMs: 50, askTimeoutMs: 50 });
  const [a, b] = InMemoryTransport.createLinkedPair();
  await server.connect(a);
  const client = new Client({ name, version: "0" });
  await client.connect(b);
  return client;
}

test("a VPS that never answers is given up at the bound, with unavailable and the reason", async () => {
  const client = await connected("stub", async () => hangingVps);
  for (const [tool, args] of [
    ["graph_query", { entity: "Ana" }],
    ["consolidate", {}],
    ["ask", { question: "Who is Ana?" }],
    ["recall", { query: "Ana", route: "vps" }],
  ] as const) {
    const r = (await client.callTool({ name: tool, arguments: args })) as CallToolResult;
    expect(r.isError, tool).toBe(true);
    expect(r.content[0]).toMatchObject({ type: "text" });
    expect((r.content[0] as { text: string }).text).toMatch(/^unavailable: .*no answer from the VPS within/);
  }
  await client.close();
});

test("the edge is opened once, as the client that initialized, and a failed open is tried again", async () => {
  const opened: string[] = [];
  let fail = true;
  const client = await connected("Claude Desktop", async (source) => {
    opened.push(source);
    if (fail) throw new Error("database locked");
    return hangingVps;
  });
  const first = (await client.callTool({ name: "sync_status", arguments: {} })) as CallToolResult;
  expect(first.isError).toBe(true);
  expect((first.content[0] as { text: string }).text).toBe("internal: database locked");
  fail = false;
  const status = async () =>
    ((await client.callTool({ name: "sync_status", arguments: {} })) as CallToolResult).isError;
  expect(await status()).toBeFalsy();
  const opens = opened.length;
  expect(await status()).toBeFalsy();
  expect(await status()).toBeFalsy();
  expect(opened.length).toBe(opens);
  expect(new Set(opened)).toEqual(new Set(["mcp:claude-desktop"]));
  await client.close();
});
