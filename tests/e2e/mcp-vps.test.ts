/**
 * The MCP tools that need the VPS, on a device logged in to a real VPS process (PostgreSQL): they
 * work while it answers, say why when its LLM is not configured, and answer at once with
 * "unreachable" once the device's sync engine sees the VPS gone; what an assistant remembers
 * reaches the VPS, with its client as the source, unless it is private.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { type Cluster, createCluster, type EdgeDevice } from "../helpers/cluster.ts";
import { edgeAuth, eventually } from "../helpers/harness.ts";

setDefaultTimeout(90_000);

let cluster: Cluster;
let dev: EdgeDevice;
let client: Client;
/** The memory the first test remembers. */
let louvre = "";

beforeAll(async () => {
  cluster = await createCluster();
  dev = await cluster.device("laptop");
  client = new Client({ name: "Claude Desktop", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${dev.url}/mcp`), {
      requestInit: { headers: edgeAuth(dev.dataDir) },
    }),
  );
}, 120_000);

afterAll(async () => {
  await client?.close();
  await cluster?.close();
});

const call = async (name: string, args: Record<string, unknown>) =>
  (await client.callTool({ name, arguments: args })) as CallToolResult;
const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");

test("logged in: remember reaches the VPS, graph_query and consolidate work, ask says there is no LLM", async () => {
  const r = await call("remember", { content: "Ana works with Bruno at the Louvre", tags: ["ana"] });
  const id = (r.structuredContent as { memory: { id: string } }).memory.id;
  louvre = id;
  await eventually(
    async () => ((await cluster.vpsMemories()).has(id) ? true : undefined),
    30_000,
    "the push",
  );

  const status = await call("sync_status", {});
  expect(status.structuredContent).toMatchObject({ auth: "ok", online: true });

  const graph = await call("graph_query", { entity: "Ana" });
  expect(graph.isError, text(graph)).toBeFalsy();
  expect(graph.structuredContent).toMatchObject({ routed: "vps" });

  const consolidate = await call("consolidate", {});
  expect(consolidate.isError, text(consolidate)).toBeFalsy();
  expect((consolidate.structuredContent as { job: { kind: string } }).job.kind).toBe("consolidate");

  const ask = await call("ask", { question: "Who does Ana work with?" });
  expect(ask.isError).toBe(true);
  expect(text(ask)).toMatch(/^unavailable: .*(LLM|language model)/i);
});

test("a private memory remembered through MCP never reaches the VPS; a shared one does", async () => {
  const secret = "my bank PIN is hidden under the blue vase";
  const priv = await call("remember", { content: secret, private: true });
  expect(priv.structuredContent).toMatchObject({ memory: { private: true, source: "mcp:claude-desktop" } });
  const shared = await call("remember", { content: "the blue vase came from Lisbon" });
  const sharedId = (shared.structuredContent as { memory: { id: string } }).memory.id;
  const privId = (priv.structuredContent as { memory: { id: string } }).memory.id;
  // The shared one was written after the private one: once it is on the VPS, the private one
  // would be too, had it been queued.
  const onVps = await eventually(
    async () => {
      await dev.api("POST", "/v1/sync/run");
      const all = await cluster.vpsMemories();
      return all.has(sharedId) ? all : undefined;
    },
    30_000,
    "the shared memory on the VPS",
  );
  expect(onVps.has(privId)).toBe(false);
  expect([...onVps.values()].some((c) => c.includes("bank PIN"))).toBe(false);
  const rows = await cluster.sql<{ n: number }>(
    "select count(*)::int as n from memories where content like '%bank PIN%'",
  );
  expect(rows[0]!.n).toBe(0);
  // Still on the device, and found there.
  const found = (await call("recall", { query: "vase", route: "local" })).structuredContent as {
    results: Array<{ memory: { id: string } }>;
  };
  expect(found.results.map((h) => h.memory.id)).toEqual(expect.arrayContaining([privId, sharedId]));
});

test("with the VPS gone, the VPS tools answer at once that it is unreachable; local recall goes on", async () => {
  await cluster.stopVps();
  await eventually(
    async () => ((await dev.api<{ online: boolean }>("GET", "/health")).body.online ? undefined : true),
    30_000,
    "the device to see the VPS gone",
  );
  for (const [tool, args] of [
    ["graph_query", { entity: "Ana" }],
    ["consolidate", {}],
    ["ask", { question: "Who is Bruno?" }],
    ["recall", { query: "Louvre", route: "vps" }],
  ] as const) {
    const r = await call(tool, args);
    expect(r.isError, tool).toBe(true);
    expect(text(r)).toMatch(/^unavailable: .*unreachable/);
  }
  // (The consolidation of the first test may have added a summary that mentions the Louvre too.)
  const local = (await call("recall", { query: "Louvre" })).structuredContent as {
    routed: string;
    results: Array<{ memory: { id: string } }>;
  };
  expect(local.routed).toBe("local");
  expect(local.results.map((h) => h.memory.id)).toContain(louvre);
});
