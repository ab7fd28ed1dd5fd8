/**
 * `dionysus mcp` over stdio, end to end: the SDK's own client drives the compiled binary (built
 * once for this file), on the database directly and through a running daemon. Tools and
 * resources, remember then recall, bad arguments (refused by name, nothing stored), the tools that
 * need a VPS failing with the reason on a device never logged in, stdout carrying nothing but
 * protocol, `mcp config`, and a client killed mid-write leaving no half-written memory.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { LocalMemory } from "../../src/core/memory.ts";
import { compiledBinary } from "../helpers/compiled.ts";
import { cleanEnv, edgeAuth, eventually, repoRoot, runCli, scratch } from "../helpers/harness.ts";

setDefaultTimeout(60_000);

const work = mkdtempSync(join(tmpdir(), "dionysus-mcp-"));
const bin = join(work, "dionysus");
const tmp = scratch();
const clients: Client[] = [];

beforeAll(() => {
  // Built with `bun run build`'s flags, once per source tree (tests/helpers/compiled.ts); a copy in
  // a directory without node_modules.
  copyFileSync(compiledBinary(), bin);
  chmodSync(bin, 0o755);
}, 300_000);

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await tmp.cleanup();
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** The SDK client on `dionysus mcp --data-dir DIR`, run from a directory without node_modules. */
async function connect(
  dataDir: string,
  name = "Claude Desktop",
  extraArgs: string[] = [],
): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: bin,
    args: ["mcp", "--data-dir", dataDir, ...extraArgs],
    cwd: work,
    env: cleanEnv(),
    stderr: "pipe",
  });
  let err = "";
  transport.stderr?.on("data", (chunk: Buffer) => {
    err += chunk.toString();
  });
  const client = new Client({ name, version: "1.0.0" });
  await client.connect(transport);
  clients.push(client);
  return { client, stderr: () => err };
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

const text = (r: CallToolResult) => r.content.map((c) => (c.type === "text" ? c.text : "")).join("\n");

describe("dionysus mcp (compiled binary, stdio)", () => {
  test("lists the nine tools, each described, with JSON schemas from the protocol, and the resources", async () => {
    const { client, stderr } = await connect(tmp.dir());
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(
      [
        "ask",
        "consolidate",
        "forget",
        "get",
        "graph_query",
        "recall",
        "recent",
        "remember",
        "sync_status",
      ].sort(),
    );
    for (const t of tools) {
      expect(t.description?.length ?? 0).toBeGreaterThan(60);
      expect(t.inputSchema.type).toBe("object");
      expect(t.outputSchema?.type).toBe("object");
    }
    const recall = tools.find((t) => t.name === "recall")!;
    expect(recall.inputSchema.required).toEqual(["query"]);
    expect(recall.inputSchema.properties?.limit).toMatchObject({ minimum: 1, maximum: 100, default: 10 });
    expect(recall.inputSchema.properties?.route).toMatchObject({ enum: ["auto", "local", "vps"] });
    const { resourceTemplates } = await client.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toEqual(["memory://{id}"]);
    const { resources } = await client.listResources();
    expect(resources.map((r) => r.uri)).toContain("memory://recent");
    // Its one log line, on stderr (a separate pipe: it may arrive after the answers).
    await eventually(() =>
      stderr().includes("MCP server on stdio, on the database directly") ? true : undefined,
    );
  });

  test("remember, then recall, recent, get, the memory:// resources and forget", async () => {
    const { client } = await connect(tmp.dir());
    const r = await call(client, "remember", { content: "Coffee with Ana at the museum", tags: ["ana"] });
    expect(r.isError).toBeFalsy();
    const memory = LocalMemory.parse((r.structuredContent as { memory: unknown }).memory);
    expect(memory).toMatchObject({
      content: "Coffee with Ana at the museum",
      tags: ["ana"],
      kind: "episodic",
    });
    expect(text(r)).toContain(memory.id);
    await call(client, "remember", { content: "Ana starts her new job in May", kind: "identity" });

    const found = await call(client, "recall", { query: "museum" });
    expect(found.isError).toBeFalsy();
    const answer = found.structuredContent as { results: Array<{ memory: { id: string } }>; routed: string };
    expect(answer.routed).toBe("local");
    expect(answer.results.map((h) => h.memory.id)).toEqual([memory.id]);
    expect(text(found)).toContain("Coffee with Ana at the museum");

    const recent = await call(client, "recent", { limit: 5 });
    expect((recent.structuredContent as { memories: unknown[] }).memories).toHaveLength(2);
    const got = await call(client, "get", { id: memory.id });
    expect((got.structuredContent as { memory: { id: string } }).memory.id).toBe(memory.id);

    const res = await client.readResource({ uri: `memory://${memory.id}` });
    expect(JSON.parse((res.contents[0] as { text: string }).text)).toMatchObject({
      id: memory.id,
      content: memory.content,
    });
    const list = await client.readResource({ uri: "memory://recent" });
    expect(
      (JSON.parse((list.contents[0] as { text: string }).text) as { memories: unknown[] }).memories,
    ).toHaveLength(2);
    await expect(
      client.readResource({ uri: "memory://0190b2a4-0000-7000-8000-000000000000" }),
    ).rejects.toThrow(/no memory/);

    expect((await call(client, "forget", { id: memory.id })).structuredContent).toEqual({
      id: memory.id,
      forgotten: true,
    });
    const gone = await call(client, "get", { id: memory.id });
    expect(gone.isError).toBe(true);
    expect(text(gone)).toStartWith("not_found:");
  });

  test("bad arguments are refused naming the field, and nothing is stored", async () => {
    const { client } = await connect(tmp.dir());
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["recall", { query: "ana", limit: 0 }, /limit must be 1\.\.100 at limit/],
      ["recall", { query: "   " }, /query must not be empty at query/],
      ["recall", { query: "ana", route: "moon" }, /at route/],
      ["remember", { content: "   " }, /content must not be empty/],
      ["remember", { contnet: "typo" }, /content[\s\S]*contnet/],
      ["remember", { content: "x", kind: "dream" }, /at kind/],
      ["remember", { content: "x", tags: ["ok", ""] }, /tags must not be empty at tags\[1\]/],
      ["remember", { content: "nul \u0000 inside" }, /content must not contain NUL/],
      ["get", { id: "not-a-uuid" }, /at id/],
      ["graph_query", { entity: "Ana", depth: 9 }, /depth must be 1\.\.3 at depth/],
    ];
    for (const [tool, args, why] of cases) {
      const r = await call(client, tool, args);
      expect(r.isError, `${tool} ${JSON.stringify(args)}`).toBe(true);
      expect(text(r)).toMatch(why);
    }
    const recent = await call(client, "recent", {});
    expect((recent.structuredContent as { memories: unknown[] }).memories).toEqual([]);
  });

  test("scopes, filters, private memories: remember files them, recall and recent narrow, the source is the client's", async () => {
    const dir = tmp.dir();
    const { client } = await connect(dir);
    const write = async (args: Record<string, unknown>) => {
      const r = await call(client, "remember", args);
      expect(r.isError, text(r)).toBeFalsy();
      return (r.structuredContent as { memory: Record<string, unknown> & { id: string } }).memory;
    };
    const work = await write({
      content: "Quarterly planning with Ana",
      scope: "Work",
      tags: ["ana", "plan"],
    });
    expect(work).toMatchObject({
      scope: "work",
      source: "mcp:claude-desktop",
      private: false,
      origin: "local",
    });
    const diary = await write({
      content: "Ana's surprise party planning",
      scope: "personal/family",
      private: true,
      occurred_at: "2026-11-01T18:00:00Z",
      metadata: { mood: "happy" },
    });
    expect(diary).toMatchObject({
      scope: "personal/family",
      private: true,
      occurred_at: "2026-11-01T18:00:00Z",
    });
    await write({ content: "Planning the garden with Ana", tags: ["ana"] });

    const ids = async (tool: string, args: Record<string, unknown>) => {
      const r = await call(client, tool, args);
      expect(r.isError, text(r)).toBeFalsy();
      const c = r.structuredContent as {
        results?: Array<{ memory: { id: string } }>;
        memories?: Array<{ id: string }>;
      };
      return (c.results?.map((h) => h.memory.id) ?? c.memories?.map((m) => m.id) ?? []).sort();
    };
    expect(await ids("recall", { query: "planning" })).toHaveLength(3);
    expect(await ids("recall", { query: "planning", filter: { scope: "work" } })).toEqual([work.id]);
    expect(await ids("recall", { query: "planning", filter: { scope: "personal/*" } })).toEqual([diary.id]);
    expect(await ids("recall", { query: "planning", filter: { tags: ["ana", "plan"] } })).toEqual([work.id]);
    expect(await ids("recall", { query: "planning", filter: { metadata: { mood: "happy" } } })).toEqual([
      diary.id,
    ]);
    expect(
      await ids("recall", { query: "planning", filter: { source: "mcp:claude-desktop", since: "1h" } }),
    ).toHaveLength(3);
    expect(await ids("recall", { query: "planning", filter: { until: "2020-01-01T00:00:00Z" } })).toEqual([]);
    expect(await ids("recent", { filter: { scope: "work" } })).toEqual([work.id]);
    // What the CLI sees: the source and the privacy the MCP server recorded.
    const got = await runCli(["get", diary.id as string, "--json", "--data-dir", dir], {
      baseEnv: cleanEnv(),
    });
    expect(JSON.parse(got.stdout)).toMatchObject({ source: "mcp:claude-desktop", private: true });
  });

  test("bad filters, scopes and a caller-set source are refused naming the field; nothing is stored", async () => {
    const { client } = await connect(tmp.dir());
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ["recall", { query: "x", filter: { colour: "red" } }, /colour/],
      [
        "recall",
        { query: "x", filter: { since: "7d", until: "30d" } },
        /since is after until at filter\.since/,
      ],
      ["recall", { query: "x", filter: { since: "yesterday" } }, /at filter\.since/],
      ["recall", { query: "x", filter: { scope: "no spaces" } }, /at filter\.scope/],
      ["recent", { filter: { kind: "dream" } }, /at filter\.kind/],
      ["remember", { content: "x", scope: "Bad Scope!" }, /at scope/],
      ["remember", { content: "x", source: "cli" }, /source/],
      ["remember", { content: "x", occurred_at: "last tuesday" }, /at occurred_at/],
      ["remember", { content: "x", private: "yes" }, /at private/],
    ];
    for (const [tool, args, why] of cases) {
      const r = await call(client, tool, args);
      expect(r.isError, `${tool} ${JSON.stringify(args)}`).toBe(true);
      expect(text(r)).toMatch(why);
    }
    expect((await call(client, "recent", { filter: { scope: "*" } })).structuredContent).toEqual({
      memories: [],
    });
  });

  test("mcp --scope: the assistant's writes go there, and its reads stay there unless it asks for *", async () => {
    const dir = tmp.dir();
    const other = await connect(dir, "Zed");
    await call(other.client, "remember", { content: "notes on the garden from zed" });
    const { client } = await connect(dir, "Cursor", ["--scope", "project/dionysus"]);
    const r = await call(client, "remember", { content: "notes on the sync engine" });
    expect(r.structuredContent).toMatchObject({
      memory: { scope: "project/dionysus", source: "mcp:cursor" },
    });
    const mine = await call(client, "recall", { query: "notes" });
    expect((mine.structuredContent as { results: unknown[] }).results).toHaveLength(1);
    const all = await call(client, "recall", { query: "notes", filter: { scope: "*" } });
    expect((all.structuredContent as { results: unknown[] }).results).toHaveLength(2);

    const bad = await runCli(["mcp", "--scope", "Not A Scope", "--data-dir", dir], { baseEnv: cleanEnv() });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toStartWith("dionysus: --scope: ");
  });

  test("the tools that need the VPS answer at once with an error saying why (never logged in)", async () => {
    const { client } = await connect(tmp.dir());
    const cases: Array<[string, Record<string, unknown>]> = [
      ["graph_query", { entity: "Ana" }],
      ["consolidate", {}],
      ["ask", { question: "Who is Ana?" }],
      ["recall", { query: "museum", route: "vps" }],
    ];
    for (const [tool, args] of cases) {
      const r = await call(client, tool, args);
      expect(r.isError, tool).toBe(true);
      expect(text(r)).toMatch(/^unavailable: .*not logged in to a VPS/);
    }
    // A semantic recall on a device never linked to a VPS is answered by the device's own
    // vectors, in the mode asked: nothing is missing, so it is not degraded.
    const local = await call(client, "recall", { query: "museum", mode: "semantic" });
    expect(local.isError).toBeFalsy();
    expect(local.structuredContent).toMatchObject({ routed: "local" });
    expect((local.structuredContent as { degraded?: boolean }).degraded).toBeUndefined();
    const status = await call(client, "sync_status", {});
    expect(status.structuredContent).toMatchObject({ queue: { queued: 0 }, auth: "none" });
    expect(text(status)).toContain("not logged in to a VPS");
  });

  test("through a running daemon: what the assistant writes is in the daemon's store", async () => {
    const dir = tmp.dir();
    const daemon = Bun.spawn([bin, "serve", "--port", "0", "--json", "--data-dir", dir], {
      cwd: work,
      env: cleanEnv(),
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const reader = daemon.stdout.getReader();
      const { value } = await reader.read();
      const { url } = JSON.parse(new TextDecoder().decode(value)) as { url: string };
      const { client, stderr } = await connect(dir);
      const r = await call(client, "remember", { content: "written through the daemon" });
      await eventually(() =>
        stderr().includes("MCP server on stdio, through the running daemon") ? true : undefined,
      );
      const id = (r.structuredContent as { memory: { id: string } }).memory.id;
      const res = await fetch(`${url}/v1/memories/${id}`, { headers: edgeAuth(dir) });
      expect(res.status).toBe(200);
      // The daemon records the MCP client as the writer (not `cli`, not `api`).
      expect(await res.json()).toMatchObject({
        id,
        content: "written through the daemon",
        source: "mcp:claude-desktop",
      });
    } finally {
      daemon.kill("SIGTERM");
      await daemon.exited;
    }
  });

  test("stdout carries nothing but JSON-RPC messages", async () => {
    const proc = Bun.spawn([bin, "mcp", "--data-dir", tmp.dir()], {
      cwd: work,
      env: cleanEnv(),
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const send = (msg: object) => proc.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", ...msg })}\n`);
    send({
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "0" } },
    });
    send({ method: "notifications/initialized" });
    send({ id: 2, method: "tools/call", params: { name: "remember", arguments: { content: "raw client" } } });
    send({ id: 3, method: "tools/call", params: { name: "recall", arguments: { query: "raw" } } });
    send({ id: 4, method: "tools/call", params: { name: "ask", arguments: { question: "raw?" } } });
    await proc.stdin.end();
    const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const lines = out.trimEnd().split("\n");
    const messages = lines.map((l) => JSON.parse(l) as { jsonrpc: string; id: number });
    expect(messages.every((m) => m.jsonrpc === "2.0")).toBe(true);
    expect(messages.map((m) => m.id).sort()).toEqual([1, 2, 3, 4]);
  });

  test("a client killed mid-write leaves whole memories only, each with its queue entry", async () => {
    const dir = tmp.dir();
    const proc = Bun.spawn([bin, "mcp", "--data-dir", dir], {
      cwd: work,
      env: cleanEnv(),
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const content = "x".repeat(200_000);
    const send = (msg: object) => proc.stdin.write(`${JSON.stringify({ jsonrpc: "2.0", ...msg })}\n`);
    send({
      id: 0,
      method: "initialize",
      params: {
        protocolVersion: "2025-06-18",
        capabilities: {},
        clientInfo: { name: "killed", version: "0" },
      },
    });
    send({ method: "notifications/initialized" });
    for (let i = 1; i <= 40; i++)
      send({
        id: i,
        method: "tools/call",
        params: { name: "remember", arguments: { content: `${i} ${content}` } },
      });
    await proc.stdin.flush();
    // Kill as soon as the first write is answered: the others are in flight or not started.
    const reader = proc.stdout.getReader();
    let seen = "";
    const answered = () =>
      seen.split("\n").some((l) => l.startsWith("{") && l.endsWith("}") && JSON.parse(l).id === 1);
    while (!answered()) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the server ended before answering");
      seen += new TextDecoder().decode(value);
    }
    proc.kill("SIGKILL");
    await proc.exited;

    const list = await runCli(["list", "--recent", "100", "--json", "--data-dir", dir], {
      baseEnv: cleanEnv(),
    });
    expect(list.code, list.stderr).toBe(0);
    const memories = (JSON.parse(list.stdout) as { memories: Array<{ content: string }> }).memories;
    expect(memories.length).toBeGreaterThanOrEqual(1);
    for (const m of memories) expect(m.content.length).toBeGreaterThan(content.length);
    for (const m of memories) expect(m.content.endsWith(content)).toBe(true);
    const status = await runCli(["status", "--json", "--data-dir", dir], { baseEnv: cleanEnv() });
    const s = JSON.parse(status.stdout) as { memories: number; queue: { queued: number } };
    expect(s.memories).toBe(memories.length);
    expect(s.queue.queued).toBe(memories.length);
  });

  test("mcp config prints the snippet with this binary's absolute path", async () => {
    const dir = tmp.dir();
    const compiled = Bun.spawnSync([bin, "mcp", "config", "--client", "claude-desktop", "--data-dir", dir], {
      cwd: work,
      env: cleanEnv(),
    });
    expect(compiled.exitCode).toBe(0);
    expect(JSON.parse(compiled.stdout.toString())).toEqual({
      mcpServers: { dionysus: { command: bin, args: ["mcp", "--data-dir", dir], env: {} } },
    });
    expect(compiled.stderr.toString()).toContain("claude_desktop_config.json");
    const scoped = Bun.spawnSync([bin, "mcp", "config", "--client", "cursor", "--scope", "Work/Notes"], {
      cwd: work,
      env: cleanEnv(),
    });
    expect(JSON.parse(scoped.stdout.toString())).toEqual({
      mcpServers: { dionysus: { command: bin, args: ["mcp", "--scope", "work/notes"], env: {} } },
    });

    const source = await runCli(["mcp", "config", "--client", "generic"], { baseEnv: cleanEnv() });
    expect(source.code).toBe(0);
    expect(JSON.parse(source.stdout)).toEqual({
      mcpServers: {
        dionysus: {
          type: "stdio",
          command: process.execPath,
          args: ["run", join(repoRoot, "src/cli/main.ts"), "mcp"],
          env: {},
        },
      },
    });
    const bad = await runCli(["mcp", "config", "--client", "vim"], { baseEnv: cleanEnv() });
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toBe("dionysus: --client must be one of claude-desktop, cursor, generic\n");
  });
});
