/**
 * The VPS tables as kysely sees them. Every table but `server_meta` and `device_codes` (which
 * exist before a user is known) is keyed by `user_id` first, so the schema can be distributed by
 * user. `int8` columns come back as JS numbers (see createVpsDatabase).
 */
import type { ColumnType, Generated, Selectable } from "kysely";
import type { GraphTables } from "./graph-schema.ts";

type Timestamptz = ColumnType<Date, Date | string, Date | string>;
type Json<T> = ColumnType<T, string, string>;

export interface ServerMetaTable {
  id: number;
  /** Random, made at first migration; carried in every cursor. */
  epoch: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface UsersTable {
  id: string;
  name: string;
  password_hash: string | null;
  /** The user's change counter: every applied write takes the next value under this row's lock. */
  seq: ColumnType<number, number | undefined, number>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface ApiKeysTable {
  user_id: string;
  id: string;
  /** SHA-256 (hex) of the whole key; the key itself is shown once and never stored. */
  key_hash: string;
  /** The first characters of the key, to tell keys apart in listings. */
  prefix: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  last_used_at: Timestamptz | null;
  revoked_at: Timestamptz | null;
}

export interface DevicesTable {
  user_id: string;
  device_id: string;
  device_name: string | null;
  platform: string | null;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  last_seen: Timestamptz | null;
  revoked_at: Timestamptz | null;
  /** Highest mutation_id of this device recorded, in the same transaction as its writes. */
  last_mutation_id: ColumnType<number, number | undefined, number>;
  /** Highest HLC stamp this device has written (the VPS's clock never runs behind it). */
  hlc_high: ColumnType<string | null, string | null | undefined, string | null>;
  /** The device whose data dir this one was split from (a copy or a restore), if any. */
  split_from: ColumnType<string | null, string | null | undefined, string | null>;
}

/** Digest of each recent mutation a device pushed, to tell a resend from a different history. */
export interface DeviceMutationsTable {
  user_id: string;
  device_id: string;
  mutation_id: number;
  digest: string;
}

export interface AuthTokensTable {
  user_id: string;
  /** SHA-256 (hex) of the opaque token. */
  token_hash: string;
  kind: "access" | "refresh";
  device_id: string;
  /** Every token issued from one sign-in shares a family; reusing a rotated refresh token revokes it. */
  family_id: string;
  expires_at: Timestamptz;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  /** Set when a refresh token has been exchanged (rotated). */
  used_at: Timestamptz | null;
  revoked_at: Timestamptz | null;
  /** The API key the sign-in was made with (null: a device-code sign-in, or older than migration 0008). */
  api_key_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface DeviceCodesTable {
  /** SHA-256 (hex) of the device_code. */
  device_code_hash: string;
  /** SHA-256 (hex) of the normalised user_code. */
  user_code_hash: string;
  device_id: string;
  device_name: string | null;
  platform: string | null;
  client_id: string | null;
  status: "pending" | "approved" | "denied" | "consumed";
  user_id: string | null;
  interval_s: number;
  last_polled_at: Timestamptz | null;
  expires_at: Timestamptz;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface MemoriesTable {
  user_id: string;
  id: string;
  content: string;
  kind: string;
  tags: Json<string[]>;
  metadata: Json<Record<string, unknown>>;
  embedding: Json<number[] | null> | null;
  created_at: string;
  updated_at: string;
  /** Hybrid logical clock of the last write, `COLLATE "C"` so that SQL compares it in byte order. */
  hlc: string;
  /** The stamp of the version the writer had seen (see Mutation.base_hlc). */
  base_hlc: string | null;
  deleted: boolean;
  origin_device: string;
  /** A path such as `project/dionysus`, `COLLATE "C"` (prefix ranges compare in byte order). */
  scope: string | null;
  /** Which client wrote it (`cli`, `api`, `mcp:<client>`, `vps`, …; `unknown` before protocol 2). */
  source: ColumnType<string, string | undefined, string>;
  occurred_at: string | null;
  /** Position in the user's change feed. */
  seq: number;
  server_updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface ConflictsTable {
  user_id: string;
  id: Generated<number>;
  memory_id: string;
  winner_hlc: string;
  loser_hlc: string;
  loser: Json<Record<string, unknown> | null> | null;
  resolved_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface WebhooksTable {
  user_id: string;
  id: string;
  device_id: string;
  url: string;
  /** Kept in clear: the server needs it to sign deliveries (HMAC), unlike every other secret. */
  secret: string;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface EmbeddingsTable {
  user_id: string;
  memory_id: string;
  /** The embedder's id (`builtin-hash-v1/384`, `ollama/<model>`). */
  model: string;
  /** md5 (hex) of the content the vector was made from. */
  content_hash: string;
  dims: number;
  /** Little-endian float32. */
  vector: Uint8Array;
  created_at: ColumnType<Date, Date | string | undefined, never>;
}

export type JobRowKind = "embed" | "extract" | "consolidate";
export type JobRowStatus = "queued" | "running" | "done" | "failed";

export interface JobsTable {
  user_id: string;
  id: string;
  kind: JobRowKind;
  /** The memory an `embed` or `extract` job works on. */
  memory_id: string | null;
  status: ColumnType<JobRowStatus, JobRowStatus | undefined, JobRowStatus>;
  payload: ColumnType<Record<string, unknown>, string | undefined, string>;
  attempts: ColumnType<number, number | undefined, number>;
  run_after: ColumnType<Date, Date | string | undefined, Date | string>;
  created_at: ColumnType<Date, Date | string | undefined, never>;
  started_at: Timestamptz | null;
  heartbeat_at: Timestamptz | null;
  finished_at: Timestamptz | null;
  result: Json<Record<string, unknown> | null> | null;
  error: string | null;
}

export interface MemoryMergesTable {
  user_id: string;
  merged_id: string;
  survivor_id: string;
  job_id: string;
  /** The version of the merged memory just before it became a tombstone. */
  merged: Json<Record<string, unknown>>;
  merged_at: ColumnType<Date, Date | string | undefined, never>;
}

export interface GraphExtractedTable {
  user_id: string;
  memory_id: string;
  extractor: string;
  content_hash: string;
}

export interface VpsTables extends GraphTables {
  embeddings: EmbeddingsTable;
  jobs: JobsTable;
  memory_merges: MemoryMergesTable;
  graph_extracted: GraphExtractedTable;
  server_meta: ServerMetaTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  devices: DevicesTable;
  device_mutations: DeviceMutationsTable;
  auth_tokens: AuthTokensTable;
  device_codes: DeviceCodesTable;
  memories: MemoriesTable;
  conflicts: ConflictsTable;
  webhooks: WebhooksTable;
}

export type MemoryRow = Selectable<MemoriesTable>;
export type DeviceRow = Selectable<DevicesTable>;
