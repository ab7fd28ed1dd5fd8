/**
 * The edge client (src/edge/client.ts) says who writes and in which default scope, the same way
 * whether it goes through a running daemon (a real one, on a real socket) or opens the database
 * itself: what the MCP server relies on.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EdgeConfig } from "../../src/core/config.ts";
import { connectEdge } from "../../src/edge/client.ts";
import { type EdgeDaemon, startEdgeDaemon } from "../../src/edge/daemon.ts";

const dirs: string[] = [];
const daemons: EdgeDaemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function config(): EdgeConfig {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-client-"));
  dirs.push(dir);
  return EdgeConfig.parse({ data_dir: dir, port: 0 });
}

for (const mode of ["direct", "daemon"] as const) {
  describe(`connectEdge (${mode})`, () => {
    test("source and default scope from the options; a per-write source; reads narrowed to the scope", async () => {
      const cfg = config();
      if (mode === "daemon") daemons.push(await startEdgeDaemon({ config: cfg }));
      const mcp = await connectEdge(cfg, { source: "mcp:cursor", scope: "project/dionysus" });
      const cli = await connectEdge(cfg);
      try {
        expect(mcp.mode).toBe(mode);
        const a = await mcp.create({ content: "written by an assistant" });
        expect(a).toMatchObject({ source: "mcp:cursor", scope: "project/dionysus" });
        const b = await mcp.create({ content: "another assistant", scope: null }, { source: "mcp:zed" });
        expect(b).toMatchObject({ source: "mcp:zed", scope: null });
        const c = await cli.create({ content: "written by hand" });
        expect(c).toMatchObject({ source: "cli", scope: null });

        expect((await mcp.recent(10)).map((m) => m.id)).toEqual([a.id]);
        expect((await mcp.recent(10, { scope: "*" })).map((m) => m.id).sort()).toEqual(
          [a.id, b.id, c.id].sort(),
        );
        expect((await cli.recent(10, { source: "cli" })).map((m) => m.id)).toEqual([c.id]);
        const r = await mcp.recall("written", 10);
        expect(r.results.map((h) => h.memory.id)).toEqual([a.id]);
        const all = await mcp.recall("written", 10, { filter: { scope: "*" } });
        expect(all.results.map((h) => h.memory.id).sort()).toEqual([a.id, c.id].sort());
      } finally {
        mcp.close();
        cli.close();
      }
    });
  });
}
