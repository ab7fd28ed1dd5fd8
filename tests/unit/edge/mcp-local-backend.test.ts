/**
 * The daemon's MCP backend recalls like `POST /v1/recall`: on a device never linked to a VPS, a
 * semantic or hybrid recall runs on the device in the mode asked (its built-in embedder), not as
 * keyword search; and the daemon's default scope narrows it. Real SQLite store.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { localBackend } from "../../../src/edge/mcp/local-backend.ts";
import { createSqliteStore } from "../../../src/edge/store/sqlite/index.ts";

const dir = mkdtempSync(join(tmpdir(), "dionysus-mcp-backend-"));
const store = createSqliteStore({ path: join(dir, "edge.db") });
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const backend = (scope: string | null) =>
  localBackend({
    store,
    ready: undefined,
    wrote: () => {},
    heavy: () => {
      throw new Error("no VPS here");
    },
    vps: undefined,
    sync: undefined,
    source: "mcp:test",
    scope,
  });

test("semantic recall on a never-linked device runs by meaning, as the local API does", async () => {
  const mcp = backend(null);
  await mcp.create({
    content: "My dog barks at the mailman every morning",
    kind: "episodic",
    tags: [],
    metadata: {},
  });
  // No word in common: keyword search finds nothing, a search by meaning does.
  expect((await mcp.recall("puppy", 5, { mode: "keyword" })).results).toHaveLength(0);
  const semantic = await mcp.recall("puppy", 5, { mode: "semantic" });
  expect(semantic.results.map((r) => r.memory.content)).toContain(
    "My dog barks at the mailman every morning",
  );
});

test("the default scope narrows a recall that names no scope", async () => {
  const work = backend("work");
  await work.create({ content: "quarterly budget review", kind: "episodic", tags: [], metadata: {} });
  const home = backend("home");
  expect((await home.recall("budget", 5, { mode: "keyword" })).results).toHaveLength(0);
  expect((await home.recall("budget", 5, { mode: "keyword", filter: { scope: "*" } })).results).toHaveLength(
    1,
  );
  expect((await work.recall("budget", 5, { mode: "keyword" })).results).toHaveLength(1);
});
