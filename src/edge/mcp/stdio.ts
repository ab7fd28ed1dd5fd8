/**
 * Serves an MCP server on this process's stdin and stdout until the client closes stdin, and
 * answers every request it read before then: a client that sends its last calls and closes its
 * end still gets their answers.
 */
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";

const idOf = (m: JSONRPCMessage): string | number | undefined =>
  "id" in m && (typeof m.id === "string" || typeof m.id === "number") ? m.id : undefined;

export async function serveStdio(server: McpServer): Promise<void> {
  const transport = new StdioServerTransport();
  const pending = new Set<string | number>();
  let ended = false;
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const check = () => {
    if (ended && pending.size === 0) done();
  };
  await server.connect(transport);
  // Count requests in and answers out around the handlers the server installed.
  const receive = transport.onmessage;
  transport.onmessage = (message) => {
    const id = idOf(message);
    if (id !== undefined && "method" in message) pending.add(id);
    receive?.(message);
  };
  const send = transport.send.bind(transport);
  transport.send = async (message) => {
    await send(message);
    const id = idOf(message);
    if (id !== undefined && !("method" in message)) {
      pending.delete(id);
      check();
    }
  };
  const end = () => {
    ended = true;
    check();
  };
  process.stdin.once("end", end);
  process.stdin.once("close", end);
  const closed = server.server.onclose;
  server.server.onclose = () => {
    closed?.();
    done();
  };
  await finished;
  await server.close();
}
