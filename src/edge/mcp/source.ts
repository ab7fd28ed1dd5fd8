/**
 * Who wrote a memory through MCP: the client's `clientInfo.name`, normalised into a `source` such as
 * `mcp:claude-desktop`. Dionysus sets it; the caller never does.
 */

/** `Claude Desktop` → `mcp:claude-desktop`; a client that gave no usable name is `mcp:unknown`. */
export function mcpSource(clientName: string | undefined): string {
  const name = (clientName ?? "")
    .normalize("NFKC")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}._-]+/gu, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 48);
  return `mcp:${name || "unknown"}`;
}
