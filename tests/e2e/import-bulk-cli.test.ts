/**
 * A large `dionysus import` (batches above the store's bulk threshold, whose full-text index is
 * built set-based after the rows) as real CLI processes: the imported memories are recallable,
 * queued once each, and the database passes SQLite's and FTS5's integrity checks. An import
 * killed with SIGKILL mid-way leaves whole batches only (rows, index entries, queue rows and the
 * index trigger together), and running it again completes it.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatHlc } from "../../src/core/hlc.ts";
import { uuidv7 } from "../../src/core/uuid.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import { checkIntegrityInBackground } from "../../src/edge/store/sqlite/integrity.ts";
import { bun, cleanEnv, cliEntry, repoRoot, runCli, scratch } from "../helpers/harness.ts";

setDefaultTimeout(120_000);
const tmp = scratch();
afterEach(() => tmp.cleanup());

/** The import's batch size (src/edge/export/import.ts): a killed import keeps whole batches. */
const BATCH = 5000;

/** An export file of `n` memories; memory i holds the word `marker<i>` and every 1000th the
 * word `needle`. */
function exportFile(n: number): string {
  const node = "other-device";
  const start = Date.now() - n - 120_000;
  const lines = [
    JSON.stringify({ dionysus: "export", format: 1, version: "test", exported_at: "x", device_id: node }),
  ];
  for (let i = 0; i < n; i++) {
    const at = new Date(start + i).toISOString();
    lines.push(
      JSON.stringify({
        id: uuidv7(start + i),
        content: `Memory number marker${i}: tea with Ana at the river market${i % 1000 === 0 ? ", needle" : ""}.`,
        kind: "episodic",
        tags: [`t${i % 7}`],
        metadata: {},
        embedding: null,
        created_at: at,
        updated_at: at,
        hlc: formatHlc({ ms: start + i, counter: 0, node }),
        deleted: i % 500 === 1, // some tombstones: never indexed
        origin_device: node,
        scope: null,
        source: "cli",
        occurred_at: null,
      }),
    );
  }
  const file = join(tmp.dir(), "export.jsonl");
  writeFileSync(file, `${lines.join("\n")}\n`);
  return file;
}

/** SQLite's quick_check (the store's check) and FTS5's check of its index structure (against the
 * rows it cannot check: tombstones are rows the index leaves out; `counts().indexed` does that). */
async function expectConsistent(db: string): Promise<void> {
  await checkIntegrityInBackground(db);
  const raw = new Database(db);
  try {
    raw.run("INSERT INTO memories_fts (memories_fts, rank) VALUES ('integrity-check', 0)");
    const trigger = raw
      .query("SELECT count(*) AS n FROM sqlite_schema WHERE name = 'memories_fts_insert'")
      .get();
    expect(trigger).toEqual({ n: 1 });
  } finally {
    raw.close();
  }
}

function counts(db: string): { memories: number; queued: number; indexed: number } {
  const raw = new Database(db, { readonly: true });
  try {
    const one = (sql: string) => (raw.query(sql).get() as { n: number }).n;
    return {
      memories: one("SELECT count(*) AS n FROM memories"),
      queued: one("SELECT count(*) AS n FROM sync_queue WHERE status = 'queued'"),
      indexed: one("SELECT count(*) AS n FROM memories_fts WHERE memories_fts MATCH 'memory'"),
    };
  } finally {
    raw.close();
  }
}

const tombstones = (n: number) => Math.floor((n + 498) / 500);

describe("dionysus import, large", () => {
  test("6,000 records: all recallable, queued once each, integrity checks pass; a second import changes nothing", async () => {
    const n = 6000;
    const file = exportFile(n);
    const dir = tmp.dir();
    const r = await runCli(["import", file, "--json", "--data-dir", dir], { baseEnv: cleanEnv() });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ records: n, created: n, bad: 0 });
    const db = join(dir, "edge.db");
    await expectConsistent(db);
    expect(counts(db)).toEqual({ memories: n, queued: n, indexed: n - tombstones(n) });

    const store = createSqliteStore({ path: db });
    try {
      const hits = store.recall("marker4321", 5);
      expect(hits.map((h) => h.memory.content)).toEqual([
        "Memory number marker4321: tea with Ana at the river market.",
      ]);
      expect(store.recall("needle", 10).length).toBe(6);
      // A tombstone is not found.
      expect(store.recall("marker501", 5)).toEqual([]);
      // A local write after the import is indexed by the (restored) trigger.
      store.create({ content: "after the import: a kingfisher", kind: "episodic" });
      expect(store.recall("kingfisher", 5).length).toBe(1);
    } finally {
      store.close();
    }

    const again = await runCli(["import", file, "--json", "--data-dir", dir], { baseEnv: cleanEnv() });
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ created: 0, updated: 0, unchanged: n });
    await expectConsistent(db);
  });

  test("a bulk batch that writes one memory twice (new, then a newer version) indexes only the newer", async () => {
    const dir = tmp.dir();
    const db = join(dir, "edge.db");
    const node = "other-device";
    const start = Date.now() - 60_000;
    const ids = Array.from({ length: 800 }, (_, i) => uuidv7(start + i));
    const version = (i: number, ms: number, content: string) => ({
      private: false,
      memory: {
        id: ids[i]!,
        content,
        kind: "episodic" as const,
        tags: [],
        metadata: {},
        embedding: null,
        created_at: new Date(start).toISOString(),
        updated_at: new Date(ms).toISOString(),
        hlc: formatHlc({ ms, counter: 0, node }),
        deleted: false,
        origin_device: node,
        scope: null,
        source: "cli",
        occurred_at: null,
      },
    });
    const batch = Array.from({ length: 800 }, (_, i) => version(i, start + i, `memory ${i}: an otter`));
    batch.push(version(0, start + 5000, "memory 0 rewritten: a heron"));
    const store = createSqliteStore({ path: db });
    try {
      expect(store.importMemories(batch)).toEqual({ created: 800, updated: 1, unchanged: 0, older: 0 });
      expect(store.recall("heron", 5).map((h) => h.memory.id)).toEqual([batch[0]!.memory.id]);
      expect(store.recall("otter", 1000).length).toBe(799);
      expect(store.queueCounts().queued).toBe(801);
    } finally {
      store.close();
    }
    await expectConsistent(db);
  });

  test("killed with SIGKILL mid-way: whole batches only, consistent; running it again completes it", async () => {
    const n = 40_000;
    const file = exportFile(n);
    const dir = tmp.dir();
    const db = join(dir, "edge.db");
    const proc = Bun.spawn([bun, cliEntry, "import", file, "--progress", "--data-dir", dir], {
      cwd: repoRoot,
      env: { ...cleanEnv(), DATABASE_URL: "" },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
    });
    // Wait on the progress lines until a fifth of the file is read (its first batch is then
    // committed), then kill.
    let seen = "";
    const decoder = new TextDecoder();
    const reader = proc.stderr.getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the import ended before it was killed: ${seen}`);
      seen += decoder.decode(value);
      const pcts = [...seen.matchAll(/^import (\d+)%$/gm)].map((m) => Number(m[1]));
      if (pcts.some((p) => p >= 20)) break;
    }
    proc.kill("SIGKILL");
    expect(await proc.exited).not.toBe(0);
    expect(proc.signalCode).toBe("SIGKILL");

    await expectConsistent(db);
    const c = counts(db);
    expect(c.memories).toBeGreaterThan(0);
    expect(c.memories).toBeLessThan(n);
    expect(c.memories % BATCH).toBe(0);
    expect(c.queued).toBe(c.memories);
    expect(c.indexed).toBe(c.memories - tombstones(c.memories));

    const rest = await runCli(["import", file, "--json", "--data-dir", dir], { baseEnv: cleanEnv() });
    expect(rest.code).toBe(0);
    expect(JSON.parse(rest.stdout)).toMatchObject({ created: n - c.memories, unchanged: c.memories, bad: 0 });
    await expectConsistent(db);
    expect(counts(db)).toEqual({ memories: n, queued: n, indexed: n - tombstones(n) });
    const store = createSqliteStore({ path: db });
    try {
      expect(store.recall("marker39999", 5).length).toBe(1);
    } finally {
      store.close();
    }
  });
});
