/**
 * One interface for the CLI's memory commands, whether a daemon is running for the data dir
 * (then everything goes through its HTTP API, so its sync engine sees every write) or not (then
 * the database is opened directly; SQLite WAL makes the two safe together).
 */
import ky, { type KyInstance } from "ky";
import type { EdgeConfig } from "../core/config.ts";
import { DionysusError, fromProblem } from "../core/errors.ts";
import { type MemoryFilter, withDefaultScope, writeScope } from "../core/filter.ts";
import { LocalMemory, type MemorySource, type NewMemoryInput } from "../core/memory.ts";
import {
  type AuthState,
  CLIENT_HEADER,
  EdgeHealth,
  type RecallMode,
  RecallResponse,
  type RecallRoute,
  type TimeUse,
} from "../core/protocol/edge-api.ts";
import { AskEvent, type AskRequest, ConsolidateResponse, Job } from "../core/protocol/heavy.ts";
import type { ConflictEntry, QueueCounts } from "../core/protocol/sync.ts";
import { VERSION } from "../core/version.ts";
import { sqliteFileBytes } from "../platform/file-size.ts";
import { readApiToken } from "./api-token.ts";
import { type DaemonInfo, daemonUrl, dbPath, readDaemonInfo } from "./daemon-file.ts";
import { recallOnDevice, withoutVector } from "./heavy/recall.ts";
import { createVpsQueryClient, GraphAnswer, type GraphAsk, type VpsQueryClient } from "./heavy/service.ts";
import { createSqliteStore } from "./store/sqlite/index.ts";
import type { EdgeStore, WriteOptions } from "./store/types.ts";
import { SyncEngine, type SyncProgress, type SyncReport, type SyncStatus } from "./sync/engine.ts";
import { readNdjsonLines } from "./vps-http.ts";

export interface EdgeStatus {
  version: string;
  device_id: string;
  /** `daemon` when a daemon answered, `direct` when the database was opened by the CLI. */
  mode: "daemon" | "direct";
  daemon: { url: string; pid: number; started_at: string } | null;
  data_dir: string;
  database: { path: string; bytes: number };
  memories: number;
  queue: QueueCounts;
  online: boolean;
  auth: AuthState;
}

/** `GET /v1/sync/status`: queue counts and the engine's state. */
export type SyncStatusView = { queue: QueueCounts } & Partial<SyncStatus>;

export interface SyncRun {
  report: SyncReport;
  status: SyncStatusView;
}

export interface EdgeClient {
  readonly mode: "daemon" | "direct";
  /** Runs one sync cycle now (in the daemon when one runs). */
  sync(onProgress?: (p: SyncProgress) => void): Promise<SyncRun>;
  syncStatus(): Promise<SyncStatusView>;
  conflicts(limit: number): Promise<ConflictEntry[]>;
  /** Writes as the client's `source` (`ConnectOptions.source`, or `options.source` for this
   * write: the MCP server learns its client's name only after connecting), in the default scope
   * when the input names none. */
  create(input: NewMemoryInput, options?: WriteOptions): Promise<LocalMemory>;
  /** Throws `not_found` for unknown or deleted ids. */
  get(id: string): Promise<LocalMemory>;
  /** Throws `not_found` for unknown or deleted ids. */
  forget(id: string): Promise<void>;
  /** Newest first; without a scope in `filter`, narrowed to the default scope when there is one. */
  recent(limit: number, filter?: MemoryFilter): Promise<LocalMemory[]>;
  /** Recall, routed (see src/edge/heavy/recall.ts): `mode` and `route` default to `auto`. */
  recall(query: string, limit: number, options?: RecallOptions): Promise<RecallResponse>;
  /** A knowledge-graph query on the VPS (503 `unavailable` when it cannot be reached). */
  graph(req: GraphAsk): Promise<GraphAnswer>;
  /** Starts a consolidation on the VPS (or answers the one in flight). */
  consolidate(): Promise<ConsolidateResponse>;
  /** A consolidation job; with `waitS`, waits up to that long for it to finish. */
  job(id: string, waitS?: number): Promise<Job>;
  /** Asks the VPS's LLM; `onEvent` sees each streamed event. */
  ask(req: AskRequest, onEvent: (event: AskEvent) => void): Promise<void>;
  status(): Promise<EdgeStatus>;
  close(): void;
}

export interface RecallOptions {
  mode?: RecallMode;
  route?: RecallRoute;
  /** How the time the query names is used (default `boost`). */
  time?: TimeUse;
  /** Without a scope, narrowed to the default scope when there is one. */
  filter?: MemoryFilter;
}

export interface ConnectOptions {
  /** How long to wait for a daemon's answers (ms). */
  timeoutMs?: number;
  /** Who writes through this client: `cli` (the default) or `mcp:<client>` (see `mcpSource`). */
  source?: MemorySource;
  /** The default scope (`--scope` on `dionysus mcp`); default: the config's `scope`
   * (`DIONYSUS_SCOPE`). Writes without a scope get it; reads without a scope filter are narrowed
   * to it and the scopes below it. */
  scope?: string | null;
}

/** The answer of `DaemonClient`'s list: the filter as query parameters of `GET /v1/memories`. */
export function filterQuery(filter: MemoryFilter | undefined): URLSearchParams {
  const p = new URLSearchParams();
  if (!filter) return p;
  for (const key of ["scope", "kind", "source", "since", "until"] as const) {
    const v = filter[key];
    if (v !== undefined) p.set(key, v);
  }
  for (const t of filter.tags ?? []) p.append("tag", t);
  for (const [k, v] of Object.entries(filter.metadata ?? {})) p.append("meta", `${k}=${String(v)}`);
  return p;
}

/** Connects to the running daemon of `config.data_dir` (with the API token kept in that data
 * dir), else opens its database directly. */
export async function connectEdge(config: EdgeConfig, options: ConnectOptions = {}): Promise<EdgeClient> {
  const who: Who = {
    source: options.source ?? "cli",
    scope: options.scope !== undefined ? options.scope : (config.scope ?? null),
  };
  const info = readDaemonInfo(config.data_dir);
  if (info && info.port !== null) {
    const token = readApiToken(config.data_dir);
    const http = ky.create({
      prefixUrl: daemonUrl(info.host, info.port),
      timeout: options.timeoutMs ?? 10_000,
      retry: 0,
      throwHttpErrors: false,
      headers: { [CLIENT_HEADER]: who.source, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    });
    try {
      const res = await http.get("health", { timeout: 1500 });
      const health = EdgeHealth.safeParse(res.ok ? await res.json() : undefined);
      if (health.success) return new DaemonClient(http, info, config, who);
    } catch {
      // a daemon.json left behind by a daemon that died: fall through to direct access
    }
  }
  return new DirectClient(config, who);
}

/** Who a client writes as, and its default scope. */
interface Who {
  source: MemorySource;
  scope: string | null;
}

/** How long a command waits for a daemon that asks the VPS (ms). */
const HEAVY_TIMEOUT_MS = 30_000;

class DirectClient implements EdgeClient {
  readonly mode = "direct" as const;
  private readonly store: EdgeStore;
  private syncEngine: SyncEngine | undefined;

  constructor(
    private readonly config: EdgeConfig,
    private readonly who: Who,
  ) {
    // The daemon runs the full integrity check when it starts; a one-shot command only checks
    // the header, owner and version, and SQLite reports any corruption it reads.
    this.store = createSqliteStore({
      path: dbPath(config.data_dir),
      maxContentBytes: config.max_content_bytes,
      integrityCheck: false,
    });
  }

  private heavyService: VpsQueryClient | undefined;

  private heavy(): VpsQueryClient {
    // No daemon, so no view of the link: the VPS is tried, and a failure answered as such.
    this.heavyService ??= createVpsQueryClient({
      dataDir: this.config.data_dir,
      cacheTtlS: this.config.cache_ttl_s,
      tokens: () => this.engine().session,
      dataVersion: () => this.store.dataVersion(),
    });
    return this.heavyService;
  }

  private engine(): SyncEngine {
    this.syncEngine ??= new SyncEngine({
      store: this.store,
      dataDir: this.config.data_dir,
      realtime: false,
      storageLimitBytes: this.config.storage_limit_bytes,
    });
    return this.syncEngine;
  }
  async sync(onProgress?: (p: SyncProgress) => void): Promise<SyncRun> {
    const report = await this.engine().syncNow(onProgress);
    return { report, status: await this.syncStatus() };
  }
  async syncStatus(): Promise<SyncStatusView> {
    return { queue: this.store.queueCounts(), ...this.engine().status() };
  }
  async conflicts(limit: number) {
    return this.store.conflicts(limit);
  }
  async create(input: NewMemoryInput, options: WriteOptions = {}) {
    return this.store.create(
      { ...input, scope: writeScope(input.scope, this.who.scope) },
      { source: options.source ?? this.who.source },
    );
  }
  async get(id: string) {
    const m = this.store.get(id);
    if (!m) throw new DionysusError("not_found", `no memory with id ${id}`);
    return m;
  }
  async forget(id: string) {
    this.store.delete(id);
  }
  async recent(limit: number, filter?: MemoryFilter) {
    return this.store.recent(limit, withDefaultScope(filter, this.who.scope)).map(withoutVector);
  }
  async recall(query: string, limit: number, options: RecallOptions = {}): Promise<RecallResponse> {
    return recallOnDevice(this.store, { query, limit, ...options }, this.who.scope, this.heavy());
  }

  async graph(req: GraphAsk) {
    const filter = withDefaultScope(req.filter, this.who.scope);
    return this.heavy().graph(filter ? { ...req, filter } : req);
  }
  async consolidate() {
    return this.heavy().consolidate();
  }
  async job(id: string, waitS?: number) {
    return this.heavy().job(id, waitS);
  }
  async ask(req: AskRequest, onEvent: (event: AskEvent) => void) {
    for await (const ev of await this.heavy().ask(req)) onEvent(ev);
  }
  async status(): Promise<EdgeStatus> {
    const path = dbPath(this.config.data_dir);
    return {
      version: VERSION,
      device_id: this.store.deviceId,
      mode: "direct",
      daemon: null,
      data_dir: this.config.data_dir,
      database: { path, bytes: sqliteFileBytes(path) },
      memories: this.store.countMemories(),
      queue: this.store.queueCounts(),
      online: false,
      auth: this.engine().authState(),
    };
  }
  close() {
    this.heavyService?.close();
    this.store.close();
  }
}

class DaemonClient implements EdgeClient {
  readonly mode = "daemon" as const;
  private readonly url: string;

  constructor(
    private readonly http: KyInstance,
    private readonly info: DaemonInfo,
    private readonly config: EdgeConfig,
    private readonly who: Who,
  ) {
    this.url = daemonUrl(info.host, info.port ?? 0);
  }

  /** Sends a request; a problem+json answer becomes the same DionysusError it was. */
  private async call(
    method: "get" | "post" | "delete",
    path: string,
    json?: unknown,
    timeout?: false | number,
    headers?: Record<string, string>,
  ): Promise<unknown> {
    let res: Response;
    try {
      res = await this.http(path, {
        method,
        ...(json === undefined ? {} : { json }),
        ...(timeout === undefined ? {} : { timeout }),
        ...(headers ? { headers } : {}),
      });
    } catch (cause) {
      throw new DionysusError(
        "unavailable",
        `the daemon at ${this.url} did not answer (${(cause as Error).message})`,
        {
          cause,
        },
      );
    }
    if (res.status === 204) return undefined;
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) throw fromProblem(res.status, body, `the daemon answered ${res.status}`);
    return body;
  }

  async sync(): Promise<SyncRun> {
    // A cycle may take a while (a first pull of a large account): no client timeout.
    const body = (await this.call("post", "v1/sync/run", undefined, false)) as SyncStatusView & {
      report: SyncReport;
    };
    const { report, ...status } = body;
    return { report, status };
  }
  async syncStatus(): Promise<SyncStatusView> {
    return (await this.call("get", "v1/sync/status")) as SyncStatusView;
  }
  async conflicts(limit: number) {
    const body = (await this.call("get", `v1/conflicts?limit=${limit}`)) as { conflicts: ConflictEntry[] };
    return body.conflicts;
  }
  async create(input: NewMemoryInput, options: WriteOptions = {}) {
    // The daemon records the source from the client header; the scope is this client's default.
    const scope = writeScope(input.scope, this.who.scope);
    return LocalMemory.parse(
      await this.call(
        "post",
        "v1/memories",
        { ...input, ...(scope === null ? {} : { scope }) },
        undefined,
        options.source ? { [CLIENT_HEADER]: options.source } : undefined,
      ),
    );
  }
  async get(id: string) {
    return LocalMemory.parse(await this.call("get", `v1/memories/${encodeURIComponent(id)}`));
  }
  async forget(id: string) {
    await this.call("delete", `v1/memories/${encodeURIComponent(id)}`);
  }
  async recent(limit: number, filter?: MemoryFilter) {
    const params = filterQuery(withDefaultScope(filter, this.who.scope));
    params.set("recent", String(limit));
    const body = (await this.call("get", `v1/memories?${params}`)) as { memories: unknown[] };
    return body.memories.map((m) => LocalMemory.parse(m));
  }
  async recall(query: string, limit: number, options: RecallOptions = {}) {
    const filter = withDefaultScope(options.filter, this.who.scope);
    // The daemon may wait on the VPS (10 s) before it falls back to local search.
    return RecallResponse.parse(
      await this.call(
        "post",
        "v1/recall",
        { query, limit, ...options, ...(filter ? { filter } : {}) },
        HEAVY_TIMEOUT_MS,
      ),
    );
  }
  async graph(req: GraphAsk) {
    const filter = withDefaultScope(req.filter, this.who.scope);
    return GraphAnswer.parse(
      await this.call("post", "v1/graph/query", filter ? { ...req, filter } : req, HEAVY_TIMEOUT_MS),
    );
  }
  async consolidate() {
    return ConsolidateResponse.parse(await this.call("post", "v1/consolidate", undefined, HEAVY_TIMEOUT_MS));
  }
  async job(id: string, waitS = 0) {
    const body = (await this.call(
      "get",
      `v1/jobs/${encodeURIComponent(id)}?wait=${waitS}`,
      undefined,
      HEAVY_TIMEOUT_MS + waitS * 1000,
    )) as { job: unknown };
    return Job.parse(body.job);
  }
  async ask(req: AskRequest, onEvent: (event: AskEvent) => void) {
    let res: Response;
    try {
      res = await this.http.post("v1/ask", { json: req, timeout: false });
    } catch (cause) {
      throw new DionysusError(
        "unavailable",
        `the daemon at ${this.url} did not answer (${(cause as Error).message})`,
        {
          cause,
        },
      );
    }
    if (!res.ok || !res.body) {
      const body: unknown = await res.json().catch(() => undefined);
      throw fromProblem(res.status, body, `the daemon answered ${res.status}`);
    }
    for await (const line of readNdjsonLines(res.body)) {
      const parsed = AskEvent.safeParse(JSON.parse(line));
      if (parsed.success) onEvent(parsed.data);
    }
  }
  async status(): Promise<EdgeStatus> {
    const health = EdgeHealth.parse(await this.call("get", "health"));
    const path = dbPath(this.config.data_dir);
    // The API has no count endpoint; a read-only look at the file is safe beside the daemon.
    let memories = -1;
    try {
      // Never the full-disk fallback here: its exclusive lock would get in the daemon's way.
      const store = createSqliteStore({ path, integrityCheck: false, fullDiskFallback: false });
      memories = store.countMemories();
      store.close();
    } catch {
      // leave it unknown
    }
    return {
      version: health.version,
      device_id: health.device_id,
      mode: "daemon",
      daemon: { url: this.url, pid: this.info.pid, started_at: this.info.started_at },
      data_dir: this.config.data_dir,
      database: { path, bytes: sqliteFileBytes(path) },
      memories,
      queue: health.queue,
      online: health.online,
      auth: health.auth ?? "none",
    };
  }
  close() {}
}
