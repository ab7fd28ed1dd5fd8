import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DionysusError } from "../../src/core/errors.ts";
import { createSqliteStore, SCHEMA_VERSION } from "../../src/edge/store/sqlite/index.ts";
import { APPLICATION_ID, MIGRATIONS } from "../../src/edge/store/sqlite/schema.ts";
import { edgeStoreContract, remoteChange } from "./edge-store.contract.ts";
import { edgeFilterContract } from "./edge-store-filters.contract.ts";

edgeStoreContract("sqlite", (opts) => createSqliteStore(opts));
edgeFilterContract("sqlite", (opts) => createSqliteStore(opts));

describe("sqlite adapter specifics", () => {
  const dirs: string[] = [];
  const tmp = () => {
    const d = mkdtempSync(join(tmpdir(), "dionysus-sqlite-"));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  function refused(path: string): DionysusError {
    try {
      createSqliteStore({ path }).close();
    } catch (err) {
      expect(err).toBeInstanceOf(DionysusError);
      return err as DionysusError;
    }
    throw new Error("the store opened a file it should have refused");
  }

  test("a write and its queue item commit together: if queuing fails, nothing is written", () => {
    const path = join(tmp(), "edge.db");
    const store = createSqliteStore({ path });
    const keep = store.create({ content: "kept", kind: "episodic", tags: [], metadata: {} });
    const raw = new Database(path);
    raw.run(
      "CREATE TRIGGER fail_queue BEFORE INSERT ON sync_queue BEGIN SELECT RAISE(ABORT, 'queue broken'); END",
    );
    expect(() => store.create({ content: "lost?", kind: "episodic", tags: [], metadata: {} })).toThrow();
    expect(() => store.update(keep.id, { content: "changed?" })).toThrow();
    expect(() => store.delete(keep.id)).toThrow();
    raw.run("DROP TRIGGER fail_queue");
    raw.close();
    expect(store.countMemories()).toBe(1);
    expect(store.get(keep.id)?.content).toBe("kept");
    expect(store.recall("lost changed", 10)).toEqual([]);
    // The failed attempts used no mutation ids: the counter stays gapless.
    store.create({ content: "next", kind: "episodic", tags: [], metadata: {} });
    expect(store.claimBatch(10).map((m) => m.mutation_id)).toEqual([1, 2]);
    store.close();
  });

  test("uses WAL, foreign keys and the Dionysus application id", () => {
    const path = join(tmp(), "edge.db");
    createSqliteStore({ path }).close();
    const raw = new Database(path);
    expect(raw.query("PRAGMA journal_mode").values()[0]?.[0]).toBe("wal");
    expect(raw.query("PRAGMA application_id").values()[0]?.[0]).toBe(0x44494f4e);
    expect(raw.query("PRAGMA user_version").values()[0]?.[0]).toBe(SCHEMA_VERSION);
    expect(raw.query("PRAGMA auto_vacuum").values()[0]?.[0]).toBe(2);
    raw.close();
  });

  test("a file that is not SQLite is refused and left byte-identical", () => {
    const path = join(tmp(), "edge.db");
    writeFileSync(path, "these are my notes, not a database\n".repeat(50));
    const before = readFileSync(path);
    expect(refused(path).code).toBe("db_corrupt");
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("another application's SQLite database is refused and left byte-identical", () => {
    const path = join(tmp(), "other.db");
    const raw = new Database(path);
    raw.run("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)");
    raw.run("INSERT INTO photos (name) VALUES ('beach.jpg')");
    raw.close();
    const before = readFileSync(path);
    const err = refused(path);
    expect(err.code).toBe("db_corrupt");
    expect(err.message).toContain("not a Dionysus");
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("a database from a newer Dionysus is refused and left byte-identical", () => {
    const path = join(tmp(), "edge.db");
    const store = createSqliteStore({ path });
    store.create({ content: "written by the future", kind: "episodic", tags: [], metadata: {} });
    store.close();
    const raw = new Database(path);
    raw.run(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const before = readFileSync(path);
    const err = refused(path);
    expect(err.code).toBe("db_too_new");
    expect(err.message).toContain("newer");
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("a corrupt database is refused and left byte-identical", () => {
    const path = join(tmp(), "edge.db");
    const store = createSqliteStore({ path });
    for (let i = 0; i < 200; i++)
      store.create({ content: `memory number ${i} `.repeat(20), kind: "episodic", tags: [], metadata: {} });
    store.close();
    const bytes = readFileSync(path);
    // Break the header of every b-tree page after the schema page.
    for (let page = 2; page * 4096 < bytes.length; page++) bytes[page * 4096] = 0xff;
    writeFileSync(path, bytes);
    const before = readFileSync(path);
    expect(refused(path).code).toBe("db_corrupt");
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  test("an empty file (an interrupted first start) is initialised", () => {
    const path = join(tmp(), "edge.db");
    writeFileSync(path, "");
    const store = createSqliteStore({ path });
    expect(store.create({ content: "works", kind: "episodic", tags: [], metadata: {} }).content).toBe(
      "works",
    );
    store.close();
  });

  test("a schema-1 database (before scopes) migrates with its memories and queue intact", () => {
    const path = join(tmp(), "edge.db");
    const raw = new Database(path);
    raw.run("PRAGMA journal_mode = WAL");
    for (const statement of MIGRATIONS[0]!) raw.run(statement);
    raw.run(`PRAGMA application_id = ${APPLICATION_ID}`);
    raw.run("PRAGMA user_version = 1");
    raw.run("INSERT INTO meta (key, value) VALUES ('device_id', '0190b7e0-0000-7000-8000-00000000d001')");
    const at = "2026-01-01T00:00:00.000Z";
    const hlc = "001767225600000-000000-0190b7e0-0000-7000-8000-00000000d001";
    raw.run(
      `INSERT INTO memories (id, content, kind, tags, metadata, created_at, updated_at, hlc, origin_device, source)
       VALUES ('0190b7e0-0000-7000-8000-000000000001', 'an unsynced memory from before', 'episodic', '["old"]',
               '{"k":1}', ?, ?, ?, '0190b7e0-0000-7000-8000-00000000d001', 'local'),
              ('0190b7e0-0000-7000-8000-000000000002', 'a pulled memory from before', 'identity', '[]', '{}', ?, ?,
               '001767225600000-000000-other', 'other', 'vps')`,
      [at, at, hlc, at, at],
    );
    raw.run(
      `INSERT INTO sync_queue (mutation_id, memory_id, op, hlc, payload, status, created_at, updated_at)
       VALUES (1, '0190b7e0-0000-7000-8000-000000000001', 'create', ?, ?, 'queued', ?, ?)`,
      [
        hlc,
        JSON.stringify({
          content: "an unsynced memory from before",
          kind: "episodic",
          tags: ["old"],
          metadata: { k: 1 },
          created_at: at,
          updated_at: at,
        }),
        at,
        at,
      ],
    );
    raw.run("INSERT INTO meta (key, value) VALUES ('last_mutation_id', '1')");
    raw.close();

    const store = createSqliteStore({ path });
    expect(store.get("0190b7e0-0000-7000-8000-000000000001")).toMatchObject({
      content: "an unsynced memory from before",
      tags: ["old"],
      metadata: { k: 1 },
      origin: "local",
      private: false,
      scope: null,
      source: "unknown",
      occurred_at: null,
    });
    expect(store.get("0190b7e0-0000-7000-8000-000000000002")).toMatchObject({
      kind: "identity",
      origin: "vps",
    });
    expect(store.recall("before", 10)).toHaveLength(2);
    const [queued] = store.claimBatch(10);
    expect(queued).toMatchObject({
      mutation_id: 1,
      op: "create",
      id: "0190b7e0-0000-7000-8000-000000000001",
    });
    // The next write continues the numbering.
    store.release([1], "test", 0);
    store.create({ content: "after the upgrade", scope: "work" });
    expect(store.claimBatch(10).map((m) => m.mutation_id)).toEqual([1, 2]);
    store.close();
    const check = new Database(path);
    expect(check.query("PRAGMA user_version").values()[0]?.[0]).toBe(SCHEMA_VERSION);
    check.close();
  });

  test("creates the data directory when it is missing", () => {
    const path = join(tmp(), "nested", "deeper", "edge.db");
    const store = createSqliteStore({ path });
    expect(store.sizeBytes()).toBeGreaterThan(0);
    store.close();
  });

  test("on a large store, common words still re-rank the memories the rare words find", () => {
    const store = createSqliteStore({ path: join(tmp(), "edge.db") });
    const base = Date.parse("2026-01-01T00:00:00Z");
    const changes = [];
    for (let i = 0; i < 2100; i++)
      changes.push(
        remoteChange({ ms: base + i, content: `the garden was green and quiet ${i}`, seq: i + 1 }),
      );
    for (let i = 0; i < 2500; i++)
      changes.push(remoteChange({ ms: base + 5000 + i, content: `the river was cold ${i}`, seq: 3000 + i }));
    store.applyChanges(changes, "e.1");
    const office = store.create({
      content: "an office party with cake",
      kind: "episodic",
      tags: [],
      metadata: {},
    });
    const garden = store.create({
      content: "a garden party with lanterns",
      kind: "episodic",
      tags: [],
      metadata: {},
    });
    const hits = store.recall("garden party", 10);
    expect(hits.slice(0, 2).map((h) => h.memory.id)).toEqual([garden.id, office.id]);
    expect(hits[0]!.score).toBeGreaterThan(hits[1]!.score);
    expect(hits[0]!.snippet).toContain("**garden** **party**");
    // Only common words: the newest matches are ranked.
    const common = store.recall("garden", 5);
    expect(common).toHaveLength(5);
    expect(common[0]!.memory.id).toBe(garden.id);
    store.close();
  });
});

describe("sqlite queue counters", () => {
  test("the trigger-kept counts equal a real count after every kind of queue change", () => {
    const dir = mkdtempSync(join(tmpdir(), "dionysus-sqlite-"));
    try {
      const path = join(dir, "edge.db");
      const store = createSqliteStore({ path });
      const made = Array.from({ length: 6 }, (_, i) =>
        store.create({ content: `count me ${i}`, kind: "episodic", tags: [], metadata: {} }),
      );
      store.delete(made[5]!.id);
      store.claimBatch(4);
      store.settle([
        { index: 0, mutation_id: 1, status: "applied" },
        { index: 1, mutation_id: 2, status: "rejected", reason: "no", retryable: false },
      ]);
      store.claimBatch(2);
      store.release([3, 4], "offline", Date.now());
      const raw = new Database(path);
      const real = Object.fromEntries(
        (
          raw.query("SELECT status, count(*) AS n FROM sync_queue GROUP BY status").all() as {
            status: string;
            n: number;
          }[]
        ).map((r) => [r.status, r.n]),
      );
      raw.close();
      expect(store.queueCounts()).toEqual({ queued: 0, syncing: 0, synced: 0, failed: 0, ...real });
      expect(store.queueCounts()).toEqual({ queued: 5, syncing: 0, synced: 1, failed: 1 });
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
