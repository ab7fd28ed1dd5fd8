/**
 * The Model Context Protocol server: the tools of ./tools.ts and the `memory://` resources over an
 * {@link EdgeClient}, so that `dionysus mcp` (stdio, through the daemon or on the database) and the
 * daemon's `/mcp` (Streamable HTTP) answer alike. A failure is a tool error (`isError`) whose text
 * starts with the error's code and says why; the tools that need the VPS are bounded in time, so an
 * assistant never waits on a server that does not answer.
 */
import { McpServer, ResourceTemplate } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, McpError } from "@modelcontextprotocol/sdk/types.js";
import type { z } from "zod";
import { DionysusError, isDionysusError, messageOf } from "../../core/errors.ts";
import { type LocalMemory, type MemorySource, mcpSource } from "../../core/memory.ts";
import type { RecallResponse } from "../../core/protocol/edge-api.ts";
import { VERSION } from "../../core/version.ts";
import type { EdgeClient } from "../client.ts";
import { TOOLS, type ToolName } from "./tools.ts";

/** What the MCP server asks of the edge: the CLI's client (daemon or direct) does it all. */
export type McpBackend = Pick<
  EdgeClient,
  "create" | "get" | "forget" | "recent" | "recall" | "graph" | "consolidate" | "ask" | "syncStatus"
>;

export interface McpServerOptions {
  /** The edge, for a client known by its `source` (`mcp:<clientInfo.name>`): opened once, when
   * the client has said who it is (after `initialize`). */
  connect: (source: MemorySource) => Promise<McpBackend>;
  /** Longest wait for a VPS answer before the tool gives up with `unavailable` (ms). */
  vpsTimeoutMs?: number;
  /** Longest wait for a whole `ask` answer (ms). */
  askTimeoutMs?: number;
}

const VPS_TIMEOUT_MS = 30_000;
const ASK_TIMEOUT_MS = 120_000;
/** How many memories `memory://recent` and the resource list show. */
const RECENT_RESOURCES = 20;

/** The answer of a tool: its structured content, and the short text older clients show. */
function ok(structured: Record<string, unknown>, text: string): CallToolResult {
  return { structuredContent: structured, content: [{ type: "text", text }] };
}

/** A failure as a tool error: `code: message`. No structured content: clients check it against
 * the tool's output schema even on an error. */
function failure(err: unknown): CallToolResult {
  const e = isDionysusError(err) ? err : new DionysusError("internal", messageOf(err));
  return { isError: true, content: [{ type: "text", text: `${e.code}: ${e.message}` }] };
}

/** `promise`, or `unavailable` after `ms`: a VPS that does not answer never holds a tool call. */
async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new DionysusError(
            "unavailable",
            `${what}: no answer from the VPS within ${Math.round(ms / 1000)} s`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One line per memory: id, kind, and the start of its content. */
function line(m: LocalMemory): string {
  const text = m.content.replace(/\s+/g, " ").trim();
  const about = [m.kind, ...(m.scope ? [m.scope] : []), ...(m.private ? ["private"] : [])].join(", ");
  return `- ${m.id} (${about}${m.tags.length ? `; ${m.tags.join(", ")}` : ""}): ${text.length > 200 ? `${text.slice(0, 199)}…` : text}`;
}

function recallText(r: RecallResponse): string {
  const where =
    r.routed === "local" ? "local keyword search" : r.routed === "vps" ? "the VPS" : "cached VPS answer";
  const head = `${r.results.length} ${r.results.length === 1 ? "memory" : "memories"} (${where})`;
  const note =
    (r.degraded && r.reason ? `\nnote: ${r.reason}` : "") +
    (r.time ? `\ntime: "${r.time.phrase}" read as ${r.time.since} to ${r.time.until} (${r.time.use})` : "");
  return `${head}${note}${r.results.length ? `\n${r.results.map((h) => line(h.memory)).join("\n")}` : ""}`;
}

export function createMcpServer(opts: McpServerOptions): McpServer {
  const vpsMs = opts.vpsTimeoutMs ?? VPS_TIMEOUT_MS;
  const askMs = opts.askTimeoutMs ?? ASK_TIMEOUT_MS;
  const server = new McpServer(
    { name: "dionysus", title: "Dionysus memory", version: VERSION },
    {
      instructions:
        "Dionysus is the user's long-term memory, shared by their assistants and devices. Call `recall` before answering anything that may depend on earlier conversations, and `remember` lasting facts the user tells you (one fact per memory).",
    },
  );
  let opened: Promise<McpBackend> | undefined;
  /** The edge, opened as this session's client (a failed open is tried again at the next call). */
  const edge = (): Promise<McpBackend> => {
    opened ??= opts.connect(mcpSource(server.server.getClientVersion()?.name ?? "")).catch((err: unknown) => {
      opened = undefined;
      throw err;
    });
    return opened;
  };
  server.server.oninitialized = () => {
    edge().catch(() => {
      // said by the first call that needs it
    });
  };

  function tool<N extends ToolName>(
    name: N,
    run: (args: z.output<(typeof TOOLS)[N]["input"]>) => Promise<CallToolResult>,
  ): void {
    const t = TOOLS[name];
    server.registerTool(
      name,
      {
        title: t.title,
        description: t.description,
        inputSchema: t.input,
        outputSchema: t.output,
        annotations: t.annotations,
      },
      (async (args: z.output<(typeof TOOLS)[N]["input"]>) => {
        try {
          return await run(args);
        } catch (err) {
          return failure(err);
        }
      }) as never,
    );
  }

  tool("remember", async (args) => {
    const memory = await (await edge()).create(args);
    return ok({ memory }, `remembered ${memory.id}`);
  });

  tool("recall", async (args) => {
    const { query, limit, ...options } = args;
    const answer = await bounded((await edge()).recall(query, limit, options), vpsMs, "recall");
    return ok(answer, recallText(answer));
  });

  tool("recent", async ({ limit, filter }) => {
    const memories = await (await edge()).recent(limit, filter);
    const text = memories.length ? memories.map(line).join("\n") : "no memories yet";
    return ok({ memories }, text);
  });

  tool("get", async ({ id }) => {
    const memory = await (await edge()).get(id);
    return ok({ memory }, memory.content);
  });

  tool("forget", async ({ id }) => {
    await (await edge()).forget(id);
    return ok({ id, forgotten: true }, `forgot ${id}`);
  });

  tool("graph_query", async (args) => {
    const answer = await bounded((await edge()).graph(args), vpsMs, "graph query");
    const names = answer.nodes.filter((n) => n.depth > 0).map((n) => `${n.name} (${n.type})`);
    const text = answer.nodes.length
      ? `${args.entity}: ${names.length ? `linked to ${names.join(", ")}` : "no linked entities"}; ${answer.memories.length} supporting memories`
      : `nothing is known about ${args.entity}`;
    return ok(answer, text);
  });

  tool("consolidate", async () => {
    const answer = await bounded((await edge()).consolidate(), vpsMs, "consolidation");
    const text = `${answer.started ? "started" : "already running:"} consolidation job ${answer.job.id} (${answer.job.status})`;
    return ok(answer, text);
  });

  tool("ask", async (args) => {
    let answer = "";
    let sources: Array<{ id: string; score: number }> = [];
    let broke: DionysusError | undefined;
    await bounded(
      (await edge()).ask(args, (ev) => {
        if (ev.type === "sources") sources = ev.memories;
        else if (ev.type === "delta") answer += ev.text;
        else if (ev.type === "error")
          broke = new DionysusError("unavailable", `the answer broke off: ${ev.message}`);
      }),
      askMs,
      "ask",
    );
    if (broke) throw broke;
    const cite = sources.length ? `\n\nsources: ${sources.map((s) => s.id).join(", ")}` : "";
    return ok({ answer, sources }, `${answer}${cite}`);
  });

  tool("sync_status", async () => {
    const status = await (await edge()).syncStatus();
    const q = status.queue;
    const link =
      status.auth === undefined || status.auth === "none"
        ? "not logged in to a VPS"
        : `${status.online ? "online" : "offline"}, ${status.auth === "ok" ? "logged in" : "login required"}${status.vps_url ? ` to ${status.vps_url}` : ""}`;
    const text = `${q.queued + q.syncing} writes waiting to sync, ${q.failed} refused; ${link}${status.last_success_at ? `; last sync ${status.last_success_at}` : ""}`;
    return ok(status as Record<string, unknown>, text);
  });

  const json = (uri: URL, value: unknown) => ({
    contents: [{ uri: uri.href, mimeType: "application/json", text: JSON.stringify(value) }],
  });

  server.registerResource(
    "memory",
    new ResourceTemplate("memory://{id}", {
      list: async () => ({
        resources: (await (await edge()).recent(RECENT_RESOURCES)).map((m) => ({
          uri: `memory://${m.id}`,
          name: m.content.replace(/\s+/g, " ").trim().slice(0, 80),
          mimeType: "application/json",
        })),
      }),
    }),
    { title: "A memory", description: "One memory by id, as JSON.", mimeType: "application/json" },
    async (uri, vars) => {
      const id = String(vars.id);
      try {
        return json(uri, await (await edge()).get(id));
      } catch (err) {
        if (isDionysusError(err) && (err.code === "not_found" || err.code === "invalid_input"))
          throw new McpError(ErrorCode.InvalidParams, `no memory with id ${id}`);
        throw err;
      }
    },
  );

  server.registerResource(
    "recent",
    "memory://recent",
    {
      title: "Recent memories",
      description: `The ${RECENT_RESOURCES} most recently written or changed memories, newest first, as JSON.`,
      mimeType: "application/json",
    },
    async (uri) => json(uri, { memories: await (await edge()).recent(RECENT_RESOURCES) }),
  );

  return server;
}
