/**
 * `dionysus backup --out FILE`: an online copy of the edge database. `VACUUM INTO` reads one
 * consistent snapshot (SQLite WAL lets it run beside a daemon that keeps writing) and writes a
 * compact, self-contained database file. The copy is checked (`quick_check`, the memories counted)
 * before it is renamed into place, so a file at `--out` is always a whole backup.
 *
 * Restoring is copying the file back as `edge.db` in a data dir (with no daemon running there).
 * The store then notices it is a copy and takes a new device identity before it syncs again
 * (docs/sync.md, "Copies of a data dir"), so a restore never reuses mutation numbers.
 */
import { Database } from "bun:sqlite";
import { existsSync, renameSync, rmSync, statSync } from "node:fs";
import { DionysusError } from "../core/errors.ts";
import { createPrivateFile } from "../platform/private-file.ts";
import { dbPath } from "./daemon-file.ts";
import { BUSY_TIMEOUT_MS } from "./store/sqlite/index.ts";

export interface EdgeBackup {
  path: string;
  bytes: number;
  memories: number;
}

export function backupEdge(dataDir: string, out: string): EdgeBackup {
  const source = dbPath(dataDir);
  if (!existsSync(source)) throw new DionysusError("not_found", `no database in ${dataDir}`);
  if (existsSync(out)) throw new DionysusError("conflict", `${out} exists already; nothing was written`);
  const tmp = `${out}.partial-${process.pid}`;
  rmSync(tmp, { force: true });
  const db = new Database(source, { readonly: true });
  try {
    // Owner-only before VACUUM INTO writes a byte (it fills an empty file and keeps its mode).
    createPrivateFile(tmp);
    db.run(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
    db.query("VACUUM INTO ?").run(tmp);
  } catch (cause) {
    rmSync(tmp, { force: true });
    throw new DionysusError("unavailable", `backup failed: ${(cause as Error).message}`, { cause });
  } finally {
    db.close();
  }
  let memories: number;
  const copy = new Database(tmp, { readonly: true });
  try {
    const check = copy.query("PRAGMA quick_check").values()[0]?.[0];
    if (check !== "ok")
      throw new DionysusError("db_corrupt", `the backup did not check out (${String(check)})`);
    memories = (copy.query("SELECT count(*) AS n FROM memories WHERE deleted = 0").get() as { n: number }).n;
  } catch (err) {
    copy.close();
    rmSync(tmp, { force: true });
    throw err;
  }
  copy.close();
  renameSync(tmp, out);
  return { path: out, bytes: statSync(out).size, memories };
}
