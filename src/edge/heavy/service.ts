/**
 * The edge's side of VPS queries ("heavy", see docs/architecture.md "Routing"): everything that runs on
 * the VPS, reached with this device's credentials, and the local cache of VPS answers.
 *
 * Whether the VPS can be used comes from the credentials file (logged in, not `reauth_required`)
 * and from the sync engine's view of the link (`online`). Without an engine's view (a one-shot
 * CLI command without a daemon) the VPS is assumed reachable and simply tried.
 */
import { join } from "node:path";
import { z } from "zod";
import { DionysusError, isDionysusError } from "../../core/errors.ts";
import type { MemoryFilter } from "../../core/filter.ts";
import type { LocalMemory, Memory } from "../../core/memory.ts";
import type { RecallHit, TimeUse } from "../../core/protocol/edge-api.ts";
import {
  type AskEvent,
  type AskRequest,
  type ConsolidateResponse,
  GraphQueryResponse,
  type Job,
} from "../../core/protocol/heavy.ts";
import {
  classifyOperation,
  type EdgeState,
  graphCacheKey,
  type Operation,
  type ResolvedMode,
  recallCacheKey,
} from "../../core/router.ts";
import { type Credentials, credentialsMtime, readCredentials } from "../sync/credentials.ts";
import type { TokenSource } from "../sync/vps-client.ts";
import { HeavyCache } from "./cache.ts";
import { HeavyClient } from "./heavy-client.ts";

/** The edge's answer to a graph query: the VPS's, and where it came from. */
export const GraphAnswer = GraphQueryResponse.extend({
  routed: z.enum(["vps", "cache"]),
  took_ms: z.number(),
});
export type GraphAnswer = z.infer<typeof GraphAnswer>;

/** The graph query as the edge takes it (defaults applied). */
export interface GraphAsk {
  entity: string;
  depth: number;
  limit: number;
  filter?: MemoryFilter;
}

export interface VpsQueryClientOptions {
  dataDir: string;
  /** `cache_ttl_s`: how long VPS answers are reused (0: never). */
  cacheTtlS: number;
  /** Who authenticates the requests: the sync engine (it refreshes tokens one at a time). */
  tokens: () => TokenSource | undefined;
  /** The sync engine's view of the link; absent: assume reachable and try. */
  online?: () => boolean;
  now?: () => number;
  /** How long to wait for a search or graph answer (ms), 10 s by default. */
  timeoutMs?: number;
  /** Changes whenever this device's memories change in a way the VPS may see (the store's
   * `dataVersion`): cached answers are keyed by it, so a write or a pull is never answered from
   * before it. */
  dataVersion?: () => string;
  log?: (message: string, err?: unknown) => void;
}

export interface VpsQueryClient {
  /** Can the VPS be used now? (For `planRecall` and `classifyOperation`.) */
  state(): EdgeState;
  /** `POST /v1/search`, from the cache when a fresh answer is there. */
  search(req: {
    query: string;
    mode: ResolvedMode;
    limit: number;
    filter?: MemoryFilter;
    time?: TimeUse;
  }): Promise<{ hits: RecallHit[]; cached: boolean }>;
  graph(req: GraphAsk): Promise<GraphAnswer>;
  consolidate(): Promise<ConsolidateResponse>;
  /** A consolidation job; with `waitS`, waits up to that long for it to finish (the VPS's `job`
   * event, with polling as a fallback). */
  job(id: string, waitS?: number): Promise<Job>;
  /** Opens the streamed answer of `POST /v1/ask`. */
  ask(req: AskRequest, signal?: AbortSignal): Promise<AsyncGenerator<AskEvent>>;
  /** Forgets cached answers. */
  clearCache(): void;
  close(): void;
}

/** A VPS search result as a recall hit: the memory as the VPS has it, marked as from the VPS. */
export function toRecallHit(h: { memory: Memory; score: number; snippet: string }): RecallHit {
  const { embedding: _e, ...memory } = h.memory;
  const local: LocalMemory = {
    ...memory,
    origin: "vps",
    private: false,
    synced_at: null,
    last_accessed_at: null,
  };
  return { memory: local, score: h.score, snippet: h.snippet };
}

/** While waiting for a job, how often it is checked besides listening for its event (ms). */
const JOB_POLL_MS = 5000;

const finished = (j: Job) => j.status === "done" || j.status === "failed";

export function createVpsQueryClient(opts: VpsQueryClientOptions): VpsQueryClient {
  const now = opts.now ?? Date.now;
  const cache = new HeavyCache({
    path: join(opts.dataDir, "vps-cache.db"),
    ttlS: opts.cacheTtlS,
    now,
    ...(opts.log ? { log: opts.log } : {}),
  });
  const versioned = (key: string) => (opts.dataVersion ? `${key}@${opts.dataVersion()}` : key);
  let creds: Credentials | undefined;
  let mtime = -1;
  let client: HeavyClient | undefined;
  let clientTokens: TokenSource | undefined;

  function credentials(): Credentials | undefined {
    const m = credentialsMtime(opts.dataDir);
    if (m !== mtime) {
      mtime = m;
      try {
        creds = m === 0 ? undefined : readCredentials(opts.dataDir);
      } catch {
        creds = undefined;
      }
    }
    return creds;
  }

  function state(): EdgeState {
    const c = credentials();
    const authenticated = !!c && !c.reauth_required && opts.tokens() !== undefined;
    return { authenticated, linked: !!c, online: opts.online?.() ?? true };
  }

  /** The client for `op`, or a 503 saying why the VPS cannot be used. */
  function clientFor(op: Operation): { client: HeavyClient; scope: string } {
    const plan = classifyOperation(op, state());
    if (plan.where === "unavailable")
      throw new DionysusError("unavailable", plan.message, { details: { reason: plan.reason } });
    return link();
  }

  function link(): { client: HeavyClient; scope: string } {
    const c = credentials();
    const tokens = opts.tokens();
    if (!c || !tokens) throw new DionysusError("unavailable", "this device is not logged in to a VPS");
    if (!client || client.baseUrl !== c.vps_url || clientTokens !== tokens) {
      client = new HeavyClient({ baseUrl: c.vps_url, tokens, timeoutMs: opts.timeoutMs ?? 10_000 });
      clientTokens = tokens;
    }
    return { client, scope: `${c.vps_url}|${c.user_id}` };
  }

  /** Prefixes a VPS failure with what was being done, keeping its code. */
  function failed(what: string, err: unknown): never {
    if (!isDionysusError(err)) throw err;
    throw new DionysusError(err.code, `${what}: ${err.message}`, {
      cause: err,
      ...(err.details ? { details: err.details } : {}),
    });
  }

  return {
    state,

    async search(req) {
      // planRecall decided the VPS can be used.
      const { client, scope } = link();
      const key = versioned(recallCacheKey(req, scope));
      const hit = cache.get<RecallHit[]>(key);
      if (hit) return { hits: hit, cached: true };
      const answer = await client.search(req);
      const hits = answer.results.map(toRecallHit);
      cache.put(key, hits);
      return { hits, cached: false };
    },

    async graph(req) {
      const started = performance.now();
      const { client, scope } = clientFor("graph");
      const key = versioned(graphCacheKey(req, scope));
      const took = () => Math.round((performance.now() - started) * 100) / 100;
      const hit = cache.get<GraphQueryResponse>(key);
      if (hit) return { ...hit, routed: "cache", took_ms: took() };
      let answer: GraphQueryResponse;
      try {
        answer = await client.graph(req);
      } catch (err) {
        failed("graph query on the VPS failed", err);
      }
      cache.put(key, answer);
      return { ...answer, routed: "vps", took_ms: took() };
    },

    async consolidate() {
      const { client } = clientFor("consolidate");
      try {
        return await client.consolidate();
      } catch (err) {
        failed("starting a consolidation on the VPS failed", err);
      }
    },

    async job(id, waitS = 0) {
      const { client } = clientFor("consolidate");
      try {
        let job = await client.job(id);
        if (waitS <= 0 || finished(job)) {
          if (job.status === "done") cache.clear();
          return job;
        }
        const deadline = Date.now() + waitS * 1000;
        const stop = new AbortController();
        let told = false;
        let wake: (() => void) | undefined;
        // The VPS says when the job ends (SSE `job` event); polling every 5 s covers a lost stream.
        void (async () => {
          try {
            for await (const ev of client.jobEvents(stop.signal))
              if (ev.id === id && finished(ev)) {
                told = true;
                wake?.();
              }
          } catch {
            // polling goes on
          }
        })();
        try {
          while (Date.now() < deadline) {
            if (!told)
              await new Promise<void>((resolve) => {
                const timer = setTimeout(resolve, Math.min(JOB_POLL_MS, Math.max(0, deadline - Date.now())));
                wake = () => {
                  clearTimeout(timer);
                  resolve();
                };
              });
            wake = undefined;
            job = await client.job(id);
            if (finished(job)) break;
            told = false;
          }
        } finally {
          stop.abort();
        }
        if (job.status === "done") cache.clear();
        return job;
      } catch (err) {
        failed("reading the job from the VPS failed", err);
      }
    },

    async ask(req, signal) {
      const { client } = clientFor("ask");
      try {
        return await client.ask(req, signal);
      } catch (err) {
        failed("asking the VPS failed", err);
      }
    },

    clearCache: () => cache.clear(),
    close: () => cache.close(),
  };
}
