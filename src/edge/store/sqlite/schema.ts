/**
 * The edge database schema, kept in code so that it ships inside the compiled binary.
 * `MIGRATIONS[i]` takes a database from `PRAGMA user_version = i` to `i + 1`; never edit a step
 * that has shipped, append a new one.
 */

/** `PRAGMA application_id` of every Dionysus edge database ("DION"). */
export const APPLICATION_ID = 0x44494f4e;

export const MIGRATIONS: readonly (readonly string[])[] = [
  [
    `CREATE TABLE meta (
      key   TEXT PRIMARY KEY NOT NULL,
      value TEXT NOT NULL
    ) WITHOUT ROWID`,

    // `rid` is an explicit INTEGER PRIMARY KEY so that VACUUM never renumbers the rows the
    // external-content FTS index points at.
    `CREATE TABLE memories (
      rid              INTEGER PRIMARY KEY,
      id               TEXT NOT NULL UNIQUE,
      content          TEXT NOT NULL,
      kind             TEXT NOT NULL,
      tags             TEXT NOT NULL DEFAULT '[]',
      metadata         TEXT NOT NULL DEFAULT '{}',
      embedding        TEXT,
      created_at       TEXT NOT NULL,
      updated_at       TEXT NOT NULL,
      hlc              TEXT NOT NULL,
      base_hlc         TEXT,
      deleted          INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1)),
      origin_device    TEXT NOT NULL,
      source           TEXT NOT NULL CHECK (source IN ('local', 'vps')),
      synced_at        TEXT,
      last_accessed_at TEXT
    )`,
    "CREATE INDEX memories_recent ON memories (deleted, updated_at)",
    "CREATE INDEX memories_lru ON memories (source, coalesce(last_accessed_at, updated_at))",

    `CREATE VIRTUAL TABLE memories_fts USING fts5 (
      content, tags,
      content = 'memories', content_rowid = 'rid',
      tokenize = 'porter unicode61'
    )`,
    // Words in the content count twice as much as words in the tags.
    "INSERT INTO memories_fts (memories_fts, rank) VALUES ('rank', 'bm25(1.0, 0.5)')",
    // Tombstones are not indexed. The update trigger fires only for indexed columns, so
    // recording an access (last_accessed_at) never touches the index.
    `CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories WHEN new.deleted = 0 BEGIN
      INSERT INTO memories_fts (rowid, content, tags) VALUES (new.rid, new.content, new.tags);
    END`,
    `CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories WHEN old.deleted = 0 BEGIN
      INSERT INTO memories_fts (memories_fts, rowid, content, tags)
        VALUES ('delete', old.rid, old.content, old.tags);
    END`,
    `CREATE TRIGGER memories_fts_update AFTER UPDATE OF content, tags, deleted ON memories BEGIN
      INSERT INTO memories_fts (memories_fts, rowid, content, tags)
        SELECT 'delete', old.rid, old.content, old.tags WHERE old.deleted = 0;
      INSERT INTO memories_fts (rowid, content, tags)
        SELECT new.rid, new.content, new.tags WHERE new.deleted = 0;
    END`,

    // mutation_id is the device's gapless counter (see EdgeStore). Queue rows reference their
    // memory; memories are only ever deleted (eviction, cache reset) when none of their rows
    // is unsynced, so the cascade only removes synced history.
    `CREATE TABLE sync_queue (
      mutation_id     INTEGER PRIMARY KEY,
      memory_id       TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
      op              TEXT NOT NULL CHECK (op IN ('create', 'update', 'delete')),
      hlc             TEXT NOT NULL,
      base_hlc        TEXT,
      payload         TEXT,
      status          TEXT NOT NULL DEFAULT 'queued'
                      CHECK (status IN ('queued', 'syncing', 'synced', 'failed')),
      retry_count     INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER,
      last_error      TEXT,
      created_at      TEXT NOT NULL,
      updated_at      TEXT NOT NULL
    )`,
    "CREATE INDEX sync_queue_due ON sync_queue (status, next_attempt_at)",
    "CREATE INDEX sync_queue_status ON sync_queue (status)",
    "CREATE INDEX sync_queue_memory ON sync_queue (memory_id, status)",

    // Queue counts kept by triggers: /health reads them on every call, and counting a queue of
    // 100,000 rows takes about 10 ms.
    `CREATE TABLE sync_queue_counts (
      status TEXT PRIMARY KEY NOT NULL,
      n      INTEGER NOT NULL
    ) WITHOUT ROWID`,
    `INSERT INTO sync_queue_counts (status, n)
       VALUES ('queued', 0), ('syncing', 0), ('synced', 0), ('failed', 0)`,
    `CREATE TRIGGER sync_queue_count_insert AFTER INSERT ON sync_queue BEGIN
      UPDATE sync_queue_counts SET n = n + 1 WHERE status = new.status;
    END`,
    `CREATE TRIGGER sync_queue_count_delete AFTER DELETE ON sync_queue BEGIN
      UPDATE sync_queue_counts SET n = n - 1 WHERE status = old.status;
    END`,
    `CREATE TRIGGER sync_queue_count_update AFTER UPDATE OF status ON sync_queue
      WHEN old.status != new.status BEGIN
      UPDATE sync_queue_counts SET n = n - 1 WHERE status = old.status;
      UPDATE sync_queue_counts SET n = n + 1 WHERE status = new.status;
    END`,

    `CREATE TABLE conflicts (
      id          INTEGER PRIMARY KEY,
      memory_id   TEXT NOT NULL,
      winner_hlc  TEXT NOT NULL,
      loser_hlc   TEXT NOT NULL,
      loser       TEXT,
      resolved_at TEXT NOT NULL
    )`,
    // One entry per conflict, whichever device (or the VPS) noticed it.
    "CREATE UNIQUE INDEX conflicts_once ON conflicts (memory_id, winner_hlc, loser_hlc)",
  ],
  [
    // Where a row came from (written here, or pulled) was called `source`; that name now means
    // which client wrote the memory, as on the VPS. Renaming keeps the CHECK and the LRU index.
    "ALTER TABLE memories RENAME COLUMN source TO origin",
    "ALTER TABLE memories ADD COLUMN scope TEXT",
    "ALTER TABLE memories ADD COLUMN source TEXT NOT NULL DEFAULT 'unknown'",
    "ALTER TABLE memories ADD COLUMN occurred_at TEXT",
    // Kept on this device only: never queued for the VPS.
    "ALTER TABLE memories ADD COLUMN private INTEGER NOT NULL DEFAULT 0 CHECK (private IN (0, 1))",
    // A list narrowed to a scope reads it newest first.
    "CREATE INDEX memories_scope ON memories (scope, updated_at) WHERE deleted = 0 AND scope IS NOT NULL",
  ],
  [
    // Vectors for semantic recall on the device (vectors.ts): the built-in embedder's, int8.
    // A vector describes the content it was made from: a new content or a delete drops it.
    `CREATE TABLE memory_vectors (
      rid    INTEGER PRIMARY KEY REFERENCES memories (rid) ON DELETE CASCADE,
      model  TEXT NOT NULL,
      vector BLOB NOT NULL
    )`,
    `CREATE TRIGGER memory_vectors_stale AFTER UPDATE OF content, deleted ON memories
      WHEN new.deleted = 1 OR old.content IS NOT new.content BEGIN
      DELETE FROM memory_vectors WHERE rid = new.rid;
    END`,
  ],
  [
    // The time a memory is about, for the time a query names (core/time-query.ts): when it
    // happened, else when it was written, as a UTC instant in the form toISOString writes, so
    // that windows compare as text. Computed (never written), indexed for the live memories.
    `ALTER TABLE memories ADD COLUMN event_at TEXT GENERATED ALWAYS AS
      (coalesce(strftime('%Y-%m-%dT%H:%M:%fZ', occurred_at), strftime('%Y-%m-%dT%H:%M:%fZ', created_at))) VIRTUAL`,
    "CREATE INDEX memories_event_at ON memories (event_at) WHERE deleted = 0",
  ],
];

/** The schema version this code writes; a file with a higher `user_version` is refused. */
export const SCHEMA_VERSION = MIGRATIONS.length;
