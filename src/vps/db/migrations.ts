/**
 * The VPS schema migrations, kept in code (no files to find at run time, so they work inside the
 * compiled binary) and applied by kysely's Migrator on PostgreSQL and PGlite alike.
 * Never edit a released migration: add the next one.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from "kysely";
import { DionysusError, isDionysusError } from "../../core/errors.ts";
import { graphMigration } from "./graph-schema.ts";

// biome-ignore lint/suspicious/noExplicitAny: migrations run before the typed schema exists.
type AnyDb = Kysely<any>;

const m0001: Migration = {
  async up(db: AnyDb) {
    await sql`
      create table server_meta (
        id int primary key check (id = 1),
        epoch text not null,
        created_at timestamptz not null default now()
      )`.execute(db);
    const epoch = crypto.randomUUID().replaceAll("-", "").slice(0, 16);
    await sql`insert into server_meta (id, epoch) values (1, ${epoch})`.execute(db);

    await sql`
      create table users (
        id text primary key,
        name text not null unique,
        password_hash text,
        seq bigint not null default 0,
        created_at timestamptz not null default now()
      )`.execute(db);

    await sql`
      create table api_keys (
        user_id text not null references users (id) on delete cascade,
        id text not null,
        key_hash text not null,
        prefix text not null,
        created_at timestamptz not null default now(),
        last_used_at timestamptz,
        revoked_at timestamptz,
        primary key (user_id, id)
      )`.execute(db);
    await sql`create index api_keys_hash on api_keys (key_hash)`.execute(db);

    await sql`
      create table devices (
        user_id text not null references users (id) on delete cascade,
        device_id text not null,
        device_name text,
        platform text,
        created_at timestamptz not null default now(),
        last_seen timestamptz,
        revoked_at timestamptz,
        last_mutation_id bigint not null default 0,
        primary key (user_id, device_id)
      )`.execute(db);
    await sql`create index devices_device_id on devices (device_id)`.execute(db);

    await sql`
      create table auth_tokens (
        user_id text not null references users (id) on delete cascade,
        token_hash text not null,
        kind text not null check (kind in ('access', 'refresh')),
        device_id text not null,
        family_id text not null,
        expires_at timestamptz not null,
        created_at timestamptz not null default now(),
        used_at timestamptz,
        revoked_at timestamptz,
        primary key (user_id, token_hash)
      )`.execute(db);
    await sql`create index auth_tokens_hash on auth_tokens (token_hash)`.execute(db);
    await sql`create index auth_tokens_family on auth_tokens (user_id, family_id)`.execute(db);
    await sql`create index auth_tokens_device on auth_tokens (user_id, device_id)`.execute(db);

    await sql`
      create table device_codes (
        device_code_hash text primary key,
        user_code_hash text not null unique,
        device_id text not null,
        device_name text,
        platform text,
        client_id text,
        status text not null default 'pending'
          check (status in ('pending', 'approved', 'denied', 'consumed')),
        user_id text references users (id) on delete cascade,
        interval_s int not null,
        last_polled_at timestamptz,
        expires_at timestamptz not null,
        created_at timestamptz not null default now()
      )`.execute(db);

    await sql`
      create table memories (
        user_id text not null references users (id) on delete cascade,
        id text not null,
        content text not null,
        kind text not null,
        tags jsonb not null default '[]',
        metadata jsonb not null default '{}',
        embedding jsonb,
        created_at text not null,
        updated_at text not null,
        hlc text collate "C" not null,
        base_hlc text collate "C",
        deleted boolean not null default false,
        origin_device text not null,
        seq bigint not null,
        server_updated_at timestamptz not null default now(),
        primary key (user_id, id)
      )`.execute(db);
    await sql`create unique index memories_feed on memories (user_id, seq)`.execute(db);
    await sql`create index memories_identity on memories (user_id, kind) where not deleted`.execute(db);

    await sql`
      create table conflicts (
        user_id text not null references users (id) on delete cascade,
        id bigint generated always as identity,
        memory_id text not null,
        winner_hlc text collate "C" not null,
        loser_hlc text collate "C" not null,
        loser jsonb,
        resolved_at timestamptz not null default now(),
        primary key (user_id, id)
      )`.execute(db);
    await sql`create index conflicts_memory on conflicts (user_id, memory_id)`.execute(db);

    await sql`
      create table webhooks (
        user_id text not null references users (id) on delete cascade,
        id text not null,
        device_id text not null,
        url text not null,
        secret text not null,
        created_at timestamptz not null default now(),
        primary key (user_id, id)
      )`.execute(db);
  },
  async down(db: AnyDb) {
    for (const t of [
      "webhooks",
      "conflicts",
      "memories",
      "device_codes",
      "auth_tokens",
      "devices",
      "api_keys",
      "users",
      "server_meta",
    ])
      await sql`drop table if exists ${sql.table(t)}`.execute(db);
  },
};

/**
 * Heavy queries (docs/heavy.md): full-text search on memories, embeddings, the job queue, the merge
 * history of consolidation and what the graph was last extracted from.
 */
const m0003: Migration = {
  async up(db: AnyDb) {
    // A stored tsvector, so ranking never re-parses content; English stemming like the edge's
    // porter tokenizer.
    await sql`
      alter table memories
        add column tsv tsvector generated always as (to_tsvector('english', content)) stored`.execute(db);
    await sql`create index memories_tsv on memories using gin (tsv)`.execute(db);

    // One vector per memory and embedder. `content_hash` (md5 of the content embedded) tells a
    // current vector from a stale one: a tags-only edit keeps its vector.
    await sql`
      create table embeddings (
        user_id text not null references users (id) on delete cascade,
        memory_id text not null,
        model text not null,
        content_hash text not null,
        dims int not null,
        vector bytea not null,
        created_at timestamptz not null default now(),
        primary key (user_id, memory_id, model)
      )`.execute(db);

    // Background work, claimed with FOR UPDATE SKIP LOCKED by any number of workers.
    await sql`
      create table jobs (
        user_id text not null references users (id) on delete cascade,
        id text not null,
        kind text not null check (kind in ('embed', 'extract', 'consolidate')),
        memory_id text,
        status text not null default 'queued' check (status in ('queued', 'running', 'done', 'failed')),
        payload jsonb not null default '{}',
        attempts int not null default 0,
        run_after timestamptz not null default now(),
        created_at timestamptz not null default now(),
        started_at timestamptz,
        heartbeat_at timestamptz,
        finished_at timestamptz,
        result jsonb,
        error text,
        primary key (user_id, id)
      )`.execute(db);
    await sql`create index jobs_due on jobs (kind, run_after) where status = 'queued'`.execute(db);
    await sql`create index jobs_running on jobs (heartbeat_at) where status = 'running'`.execute(db);
    // At most one queued job per memory and kind: ten quick edits make one job.
    await sql`
      create unique index jobs_memory_once on jobs (user_id, kind, memory_id)
      where status = 'queued'`.execute(db);
    // At most one consolidation per user in flight.
    await sql`
      create unique index jobs_consolidate_once on jobs (user_id)
      where kind = 'consolidate' and status in ('queued', 'running')`.execute(db);

    // Consolidation keeps the history of what it merged: the version each duplicate had.
    await sql`
      create table memory_merges (
        user_id text not null references users (id) on delete cascade,
        merged_id text not null,
        survivor_id text not null,
        job_id text not null,
        merged jsonb not null,
        merged_at timestamptz not null default now(),
        primary key (user_id, merged_id)
      )`.execute(db);
    await sql`create index memory_merges_survivor on memory_merges (user_id, survivor_id)`.execute(db);

    // What each memory's graph entities were extracted from (content hash and extractor).
    await sql`
      create table graph_extracted (
        user_id text not null references users (id) on delete cascade,
        memory_id text not null,
        extractor text not null,
        content_hash text not null,
        primary key (user_id, memory_id)
      )`.execute(db);
  },
  async down(db: AnyDb) {
    for (const t of ["graph_extracted", "memory_merges", "jobs", "embeddings"])
      await sql`drop table if exists ${sql.table(t)}`.execute(db);
    await sql`drop index if exists memories_tsv`.execute(db);
    await sql`alter table memories drop column if exists tsv`.execute(db);
  },
};

/**
 * A device's history, so that a copied or restored data dir can never have its writes taken for
 * resends: the digest of each recent mutation (a `duplicate` must be the same mutation), the
 * device's highest stamp (the VPS's hybrid clock), and where a split device came from.
 */
const m0004: Migration = {
  async up(db: AnyDb) {
    await sql`
      create table device_mutations (
        user_id text not null,
        device_id text not null,
        mutation_id bigint not null,
        digest text not null,
        primary key (user_id, device_id, mutation_id),
        foreign key (user_id, device_id) references devices (user_id, device_id) on delete cascade
      )`.execute(db);
    await sql`alter table devices add column hlc_high text collate "C"`.execute(db);
    await sql`alter table devices add column split_from text`.execute(db);
  },
  async down(db: AnyDb) {
    await sql`drop table if exists device_mutations`.execute(db);
    await sql`alter table devices drop column if exists hlc_high`.execute(db);
    await sql`alter table devices drop column if exists split_from`.execute(db);
  },
};

/**
 * Characters of content that full-text search indexes. `to_tsvector` refuses a text whose vector
 * would pass 1 MiB ("string is too long for tsvector"), and a text of distinct words, hyphenated
 * compounds or addresses reaches that from about a quarter of it (measured: at most 4.9 bytes of
 * vector per character of input). 64 Ki characters stay under 1/3 of the limit; the rest of a longer
 * memory is stored and synced whole, and found by semantic search, just not by keywords.
 */
export const FTS_MAX_CHARS = 65_536;

/** The search vector is made from the first {@link FTS_MAX_CHARS} characters of content. */
const m0005: Migration = {
  async up(db: AnyDb) {
    await sql`drop index if exists memories_tsv`.execute(db);
    await sql`alter table memories drop column tsv`.execute(db);
    await sql`
      alter table memories
        add column tsv tsvector generated always as
          (to_tsvector('english', left(content, ${sql.lit(FTS_MAX_CHARS)}))) stored`.execute(db);
    await sql`create index memories_tsv on memories using gin (tsv)`.execute(db);
  },
  async down(db: AnyDb) {
    await sql`drop index if exists memories_tsv`.execute(db);
    await sql`alter table memories drop column tsv`.execute(db);
    await sql`
      alter table memories
        add column tsv tsvector generated always as (to_tsvector('english', content)) stored`.execute(db);
    await sql`create index memories_tsv on memories using gin (tsv)`.execute(db);
  },
};

/**
 * Protocol 2: a memory's scope (a path, compared in byte order so that prefix ranges are exact),
 * which client wrote it, and when the remembered event happened. Rows from before get no scope,
 * source `unknown`, no occurred_at.
 */
const m0006: Migration = {
  async up(db: AnyDb) {
    await sql`alter table memories add column scope text collate "C"`.execute(db);
    await sql`alter table memories add column source text not null default 'unknown'`.execute(db);
    await sql`alter table memories add column occurred_at text`.execute(db);
    await sql`
      create index memories_scope on memories (user_id, scope)
      where not deleted and scope is not null`.execute(db);
  },
  async down(db: AnyDb) {
    await sql`drop index if exists memories_scope`.execute(db);
    for (const c of ["scope", "source", "occurred_at"])
      await sql`alter table memories drop column if exists ${sql.ref(c)}`.execute(db);
  },
};

/**
 * Rate-limit counters shared by every instance on one database (src/vps/http/shared-rate-limit.ts):
 * one row per key: the start of its current window (ms) and the count in it. Unlogged: a crash only resets the windows. Not per user (keys
 * are addresses and devices), so on a distributed Postgres it stays a local table.
 */
const m0007: Migration = {
  async up(db: AnyDb) {
    await sql`
      create unlogged table rate_limits (
        key text primary key,
        window_start bigint not null,
        count int not null
      )`.execute(db);
  },
  async down(db: AnyDb) {
    await sql`drop table if exists rate_limits`.execute(db);
  },
};

/**
 * Which API key a sign-in came from (null for a device-code sign-in, and for tokens issued before
 * this migration): revoking the key revokes the tokens of every sign-in made with it.
 */
const m0008: Migration = {
  async up(db: AnyDb) {
    await sql`alter table auth_tokens add column api_key_id text`.execute(db);
    await sql`
      create index auth_tokens_api_key on auth_tokens (user_id, api_key_id)
      where api_key_id is not null and revoked_at is null`.execute(db);
  },
  async down(db: AnyDb) {
    await sql`drop index if exists auth_tokens_api_key`.execute(db);
    await sql`alter table auth_tokens drop column if exists api_key_id`.execute(db);
  },
};

/** Every migration, by name; names sort in application order. */
export const vpsMigrations: Record<string, Migration> = {
  "0001_initial": m0001,
  "0002_graph": graphMigration,
  "0003_heavy": m0003,
  "0004_device_history": m0004,
  "0005_fts_cap": m0005,
  "0006_scope_source": m0006,
  "0007_rate_limits": m0007,
  "0008_token_api_key": m0008,
};

class InCodeProvider implements MigrationProvider {
  constructor(private readonly migrations: Record<string, Migration>) {}
  async getMigrations() {
    return this.migrations;
  }
}

const MIGRATION_TABLE = "dionysus_migrations";

/**
 * Migrations recorded in the database that this binary does not have: the database was migrated
 * by a newer dionysus. Empty on a new database.
 */
async function unknownMigrations(db: AnyDb, migrations = vpsMigrations): Promise<string[]> {
  const exists = await sql<{ t: string | null }>`select to_regclass(${MIGRATION_TABLE}) as t`.execute(db);
  if (!exists.rows[0]?.t) return [];
  const rows = await sql<{
    name: string;
  }>`select name from ${sql.table(MIGRATION_TABLE)} order by name`.execute(db);
  return rows.rows.map((r) => r.name).filter((name) => !(name in migrations));
}

/**
 * Applies every pending migration (under kysely's migration lock, so several VPS instances may
 * start at once). Returns the names applied now. A database a newer dionysus has migrated is
 * refused (`db_too_new`) and left untouched.
 */
export async function migrateToLatest(db: AnyDb, migrations = vpsMigrations): Promise<string[]> {
  const newer = await unknownMigrations(db, migrations);
  if (newer.length > 0)
    throw new DionysusError(
      "db_too_new",
      `the database is from a newer version of dionysus (migration ${newer.join(", ")}); upgrade dionysus`,
      { details: { unknown_migrations: newer } },
    );
  const migrator = new Migrator({
    db,
    provider: new InCodeProvider(migrations),
    migrationTableName: MIGRATION_TABLE,
    migrationLockTableName: "dionysus_migrations_lock",
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    if (isDionysusError(error)) throw error;
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new DionysusError(
      "unavailable",
      failed
        ? `database migration ${failed} failed: ${String(error)}`
        : `database migration failed: ${String(error)}`,
      { cause: error },
    );
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}
