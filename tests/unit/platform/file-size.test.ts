import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sqliteFileBytes } from "../../../src/platform/file-size.ts";

const dir = mkdtempSync(join(tmpdir(), "dionysus-size-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a database's size is its file plus its WAL; missing files count 0", () => {
  const db = join(dir, "edge.db");
  expect(sqliteFileBytes(db)).toBe(0);
  writeFileSync(db, Buffer.alloc(4096));
  expect(sqliteFileBytes(db)).toBe(4096);
  writeFileSync(`${db}-wal`, Buffer.alloc(1000));
  writeFileSync(`${db}-shm`, Buffer.alloc(32768));
  expect(sqliteFileBytes(db)).toBe(5096);
});
