/**
 * `dionysus mcp`: the MCP server on stdio, for assistants that start their memory as a child
 * process (Claude Desktop, Cursor, …). Like every command it goes through the running daemon when
 * there is one, else it opens the database itself. stdout carries nothing but the protocol; the one
 * line it logs goes to stderr. `dionysus mcp config` prints the snippet that registers it.
 */
import { resolve } from "node:path";
import type { Command } from "commander";
import { DionysusError, describeIssues } from "../../core/errors.ts";
import { type MemorySource, Scope } from "../../core/memory.ts";
import { connectEdge, type EdgeClient } from "../../edge/client.ts";
import { createMcpServer } from "../../edge/mcp/server.ts";
import { serveStdio } from "../../edge/mcp/stdio.ts";
import { edgeConfig } from "../edge-command.ts";
import { action, printJson } from "../output.ts";

/** `--scope`: a scope such as `work` or `project/dionysus` (stored in lower case). */
function parseScope(value: string): string {
  const r = Scope.safeParse(value);
  if (!r.success) throw new DionysusError("invalid_input", `--scope: ${describeIssues(r.error.issues)}`);
  return r.data;
}

export const MCP_CLIENTS = ["claude-desktop", "cursor", "generic"] as const;
export type McpClient = (typeof MCP_CLIENTS)[number];

/** Where each client keeps the snippet (said on stderr, beside the snippet). */
const WHERE: Record<McpClient, string> = {
  "claude-desktop":
    "claude_desktop_config.json (Settings > Developer > Edit Config; macOS: ~/Library/Application Support/Claude/, Windows: %APPDATA%\\Claude\\)",
  cursor: "~/.cursor/mcp.json (every project) or .cursor/mcp.json (one project)",
  generic: "your client's MCP configuration (the common `mcpServers` shape: command, args, env)",
};

/** How this very program is started again: the compiled binary itself, or Bun and the script. */
export function selfCommand(execPath: string, main: string): { command: string; args: string[] } {
  // A compiled binary's entry point lives in Bun's embedded file system.
  const compiled = main.startsWith("/$bunfs/") || /^[A-Za-z]:[\\/]~BUN[\\/]/.test(main);
  return compiled ? { command: execPath, args: [] } : { command: execPath, args: ["run", resolve(main)] };
}

/** A stdio server's entry in an MCP client's configuration. */
interface StdioEntry {
  type?: "stdio";
  command: string;
  args: string[];
  env: Record<string, string>;
}

/**
 * The JSON that registers Dionysus with `client`. Claude Desktop and Cursor read the same
 * `mcpServers` shape (command, args, env); the generic form adds `type: "stdio"`, which clients
 * that also speak HTTP (Claude Code's .mcp.json, for one) use to tell the two apart.
 */
export function mcpClientConfig(
  client: McpClient,
  self: { command: string; args: string[] },
  extraArgs: string[],
): { mcpServers: Record<string, StdioEntry> } {
  const entry: StdioEntry = { command: self.command, args: [...self.args, "mcp", ...extraArgs], env: {} };
  return { mcpServers: { dionysus: client === "generic" ? { type: "stdio", ...entry } : entry } };
}

export function registerMcp(program: Command): void {
  const mcp = program
    .command("mcp")
    .description("run the MCP server on stdio (for Claude Desktop, Cursor and other assistants)")
    .option(
      "--scope <scope>",
      "this assistant's default scope: its writes go there, and its reads without a scope are narrowed to it (else DIONYSUS_SCOPE)",
    )
    .action(
      action(async (opts: { scope?: string }, cmd: Command) => {
        const config = edgeConfig(cmd);
        const scope = opts.scope === undefined ? undefined : parseScope(opts.scope);
        let client: EdgeClient | undefined;
        const connect = async (source: MemorySource) => {
          client = await connectEdge(config, { source, ...(scope ? { scope } : {}) });
          process.stderr.write(
            `dionysus: MCP server on stdio, ${client.mode === "daemon" ? "through the running daemon" : "on the database directly"}\n`,
          );
          return client;
        };
        try {
          await serveStdio(createMcpServer({ connect }));
        } finally {
          client?.close();
        }
      }),
    );

  mcp
    .command("config")
    .description("print the JSON that registers Dionysus with an MCP client")
    .option("--client <client>", `claude-desktop, cursor or generic`, "generic")
    .action(
      action((opts: { client: string }, cmd: Command) => {
        const client = MCP_CLIENTS.find((c) => c === opts.client);
        if (!client)
          throw new DionysusError("invalid_input", `--client must be one of ${MCP_CLIENTS.join(", ")}`);
        // `--scope` is `mcp`'s own option (accepted after `config` too): the server gets it.
        const { dataDir, scope } = cmd.optsWithGlobals<{ dataDir?: string; scope?: string }>();
        const home = dataDir ?? process.env.DIONYSUS_HOME;
        const extra = [
          ...(scope === undefined ? [] : ["--scope", parseScope(scope)]),
          ...(home ? ["--data-dir", resolve(home)] : []),
        ];
        printJson(mcpClientConfig(client, selfCommand(process.execPath, Bun.main), extra));
        process.stderr.write(`dionysus: add this to ${WHERE[client]}\n`);
      }),
    );
}
