/**
 * MCP over Streamable HTTP for the daemon's `/mcp` route. Each client session (opened by its
 * `initialize`) gets its own MCP server, so that what it writes carries its own client name; the
 * session id travels in `Mcp-Session-Id`. Sessions end with a DELETE, or, beyond
 * {@link MAX_SESSIONS}, the least recently used one is closed. The Host, Origin and token checks
 * are the local API's, applied before this handler runs.
 */
import { randomUUID } from "node:crypto";
import type { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";

/** Open sessions kept at most; a client whose session was closed gets 404 and initializes again. */
export const MAX_SESSIONS = 64;

interface Session {
  transport: WebStandardStreamableHTTPServerTransport;
  server: McpServer;
}

/** Answers the requests of `/mcp` (POST, GET for the server's event stream, DELETE). */
export function createMcpHttpHandler(opts: {
  newServer: () => McpServer;
  /** Largest POST body read (bytes). */
  maxBodyBytes: number;
}): (req: Request) => Promise<Response> {
  // A Map keeps insertion order: re-inserting on use makes its first entry the least recently used.
  const sessions = new Map<string, Session>();

  const touch = (id: string, s: Session) => {
    sessions.delete(id);
    sessions.set(id, s);
    while (sessions.size > MAX_SESSIONS) {
      const [oldest, old] = sessions.entries().next().value as [string, Session];
      sessions.delete(oldest);
      void old.server.close();
    }
  };

  async function open(req: Request): Promise<Response> {
    const server = opts.newServer();
    const transport: WebStandardStreamableHTTPServerTransport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      enableJsonResponse: true,
      maxRequestBodySize: opts.maxBodyBytes,
      onsessioninitialized: (id) => touch(id, { transport, server }),
    });
    server.server.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    const res = await transport.handleRequest(req);
    // Anything but an initialize opens no session: drop the server at once.
    if (!transport.sessionId) await server.close();
    return res;
  }

  return async (req) => {
    const id = req.headers.get("mcp-session-id");
    if (id === null) return open(req);
    const session = sessions.get(id);
    if (!session)
      return Response.json(
        { jsonrpc: "2.0", error: { code: -32001, message: "Session not found" }, id: null },
        { status: 404 },
      );
    touch(id, session);
    return session.transport.handleRequest(req);
  };
}
