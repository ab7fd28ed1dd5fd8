/**
 * Configuration schemas with defaults. Only `src/cli` reads the environment and files; it
 * resolves flags > `DIONYSUS_*` env > config file > these defaults and parses the result here.
 */
import { z } from "zod";
import { parseCidr } from "./ip.ts";
import { LogLevel } from "./log-level.ts";
import { DEFAULT_MAX_CONTENT_BYTES, Scope } from "./memory.ts";
import { MAX_PUSH_BYTES, MAX_PUSH_MUTATIONS } from "./protocol/sync.ts";

const Port = z.coerce.number().int().min(0).max(65535);

/** A list from a config file (JSON array) or the environment (comma-separated). */
const commaList = (v: unknown) =>
  typeof v === "string"
    ? v
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "")
    : v;

/** A boolean from a config file or the environment (`true`/`false`, `1`/`0`, `yes`/`no`). */
const Flag = z.preprocess((v) => {
  if (typeof v !== "string") return v;
  const s = v.trim().toLowerCase();
  return ["true", "1", "yes", "on"].includes(s)
    ? true
    : ["false", "0", "no", "off", ""].includes(s)
      ? false
      : v;
}, z.boolean());

export const EdgeConfig = z.object({
  /** Where the database, device id and tokens live. */
  data_dir: z.string().min(1),
  host: z.string().default("127.0.0.1"),
  port: Port.default(8080),
  /** Largest memory content in UTF-8 bytes. */
  max_content_bytes: z.coerce.number().int().positive().default(DEFAULT_MAX_CONTENT_BYTES),
  /** Browser origins allowed to call the local API (CORS); none by default. */
  allowed_origins: z.array(z.string()).default([]),
  /** Seconds between background sync cycles. */
  sync_interval_s: z.coerce.number().positive().default(30),
  /** Local database size limit before LRU eviction of cached VPS memories. */
  storage_limit_bytes: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * 1024 * 1024),
  /** How long VPS query results are cached locally. */
  cache_ttl_s: z.coerce.number().nonnegative().default(300),
  /** Least important daemon log lines written (debug, info, warn, error). */
  log_level: LogLevel.default("info"),
  /** Seconds between prunings of the sync queue by the daemon (0: never). */
  prune_interval_s: z.coerce.number().nonnegative().default(3600),
  /** Synced queue rows older than this many seconds are pruned. */
  queue_retention_s: z.coerce
    .number()
    .nonnegative()
    .default(7 * 86400),
  /** Default scope (`DIONYSUS_SCOPE`): writes without a scope get it, and recall and list without
   * a scope filter are narrowed to it and the scopes below it (`--scope '*'` reads everything). */
  scope: Scope.optional(),
});
export type EdgeConfig = z.infer<typeof EdgeConfig>;

export const VpsConfig = z.object({
  data_dir: z.string().min(1),
  host: z.string().default("0.0.0.0"),
  port: Port.default(8000),
  /** PostgreSQL URL; without one the VPS runs on embedded PGlite in `data_dir`. */
  database_url: z.string().optional(),
  /** PostgreSQL URL for the work that needs one session throughout (LISTEN, migrations) when
   * `database_url` goes through a transaction-pooling PgBouncer: PostgreSQL directly, or a
   * session-pooled PgBouncer database. Defaults to `database_url`. */
  direct_database_url: z.string().optional(),
  /** Requests per device per minute (per client address on the auth endpoints). */
  rate_limit_per_min: z.coerce.number().int().positive().default(100),
  /** Requests per user per minute, all the user's devices together. */
  user_rate_limit_per_min: z.coerce.number().int().positive().default(500),
  /** Most devices (not revoked) one user may have; signing in a new one beyond is refused. */
  max_devices_per_user: z.coerce.number().int().positive().default(100),
  /** Most webhooks one user may have. */
  max_webhooks_per_user: z.coerce.number().int().positive().default(10),
  /** Let webhooks reach loopback, private, link-local and other non-public addresses. */
  webhook_allow_private: Flag.default(false),
  /**
   * Reverse proxies (IPs or CIDRs) whose `X-Forwarded-For` names the client. Requests from any
   * other address are taken to come from their socket peer.
   */
  trusted_proxies: z
    .preprocess(
      commaList,
      z.array(z.string().refine((s) => parseCidr(s) !== undefined, "not an IP address or CIDR")),
    )
    .default([]),
  access_token_ttl_s: z.coerce.number().int().positive().default(3600),
  refresh_token_ttl_s: z.coerce
    .number()
    .int()
    .positive()
    .default(60 * 24 * 3600),
  max_push_mutations: z.coerce.number().int().positive().default(MAX_PUSH_MUTATIONS),
  max_push_bytes: z.coerce.number().int().positive().default(MAX_PUSH_BYTES),
  max_content_bytes: z.coerce.number().int().positive().default(DEFAULT_MAX_CONTENT_BYTES),
  /** How far ahead of the server clock a write's HLC may be before it is refused (ms). */
  max_clock_skew_ms: z.coerce.number().int().positive().default(60_000),
  /** Public base URL, used in verification_uri; defaults to the address the server listens on. */
  public_url: z.string().url().optional(),
  ollama_url: z.string().url().optional(),
  ollama_model: z.string().default("nomic-embed-text"),
  ollama_chat_model: z.string().default("llama3.2"),
  neo4j_url: z.string().optional(),
  neo4j_user: z.string().default("neo4j"),
  neo4j_password: z.string().optional(),
  /** Least important log lines written (debug, info, warn, error). */
  log_level: LogLevel.default("info"),
  /** Seconds between prunings of old rows (0: never); see conflict and job retention. */
  prune_interval_s: z.coerce.number().nonnegative().default(3600),
  /** Conflict-log entries older than this many days are pruned. */
  conflict_retention_days: z.coerce.number().positive().default(90),
  /** Failed jobs older than this many days are pruned. */
  failed_job_retention_days: z.coerce.number().positive().default(30),
});
export type VpsConfig = z.infer<typeof VpsConfig>;
