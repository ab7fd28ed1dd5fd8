/**
 * The daemon's own MCP backend: the store, the sync hook and the VPS query client the local API's
 * routes use, called in process (no HTTP round trip between `/mcp` and `/v1/*`). Writes wait for
 * the integrity check and poke the sync engine exactly as `POST /v1/memories` does; they are
 * recorded as the MCP client's (`source`), and the daemon's default scope applies as on `/v1/*`.
 */
import { DionysusError } from "../../core/errors.ts";
import { withDefaultScope, writeScope } from "../../core/filter.ts";
import type { MemorySource } from "../../core/memory.ts";
import type { Operation } from "../../core/router.ts";
import { recallOnDevice, withoutVector } from "../heavy/recall.ts";
import type { VpsQueryClient } from "../heavy/service.ts";
import type { SyncControl } from "../http/app.ts";
import type { EdgeStore } from "../store/types.ts";
import type { McpBackend } from "./server.ts";

export interface LocalBackendDeps {
  store: EdgeStore;
  /** Writes wait for this (the daemon's integrity check). */
  ready: Promise<void> | undefined;
  /** Called after each write (the sync engine pushes soon after). */
  wrote: () => void;
  /** The VPS query client for `op`, or a 503 saying why there is none. */
  heavy: (op: Operation) => VpsQueryClient;
  vps: VpsQueryClient | undefined;
  sync: SyncControl | undefined;
  /** Who writes: `mcp:<client>`. */
  source: MemorySource;
  /** The daemon's default scope (`DIONYSUS_SCOPE`): writes without a scope get it, reads without
   * a scope filter are narrowed to it. */
  scope: string | null;
}

export function localBackend(deps: LocalBackendDeps): McpBackend {
  const { store } = deps;
  return {
    async create(input) {
      await deps.ready;
      const memory = store.create(
        { ...input, scope: writeScope(input.scope, deps.scope) },
        { source: deps.source },
      );
      deps.wrote();
      return memory;
    },
    async get(id) {
      const memory = store.get(id);
      if (!memory) throw new DionysusError("not_found", `no memory with id ${id}`);
      return memory;
    },
    async forget(id) {
      await deps.ready;
      store.delete(id);
      deps.wrote();
    },
    async recent(limit, filter) {
      return store.recent(limit, withDefaultScope(filter, deps.scope)).map(withoutVector);
    },
    recall(query, limit, options = {}) {
      return recallOnDevice(store, { query, limit, ...options }, deps.scope, deps.vps);
    },
    async graph(req) {
      const filter = withDefaultScope(req.filter, deps.scope);
      return deps.heavy("graph").graph({ ...req, ...(filter ? { filter } : {}) });
    },
    async consolidate() {
      return deps.heavy("consolidate").consolidate();
    },
    async ask(req, onEvent) {
      for await (const ev of await deps.heavy("ask").ask(req)) onEvent(ev);
    },
    async syncStatus() {
      return { queue: store.queueCounts(), ...(deps.sync?.status() ?? {}) };
    },
  };
}
