/**
 * `dionysus export`: every matching memory, read in one snapshot of the edge database, as JSON
 * Lines (to a file or stdout) or as a directory of Markdown files. A file is written beside its
 * target and renamed into place at the end, so an interrupted export never looks complete. Every
 * file is owner-only (0600, folders 0700) from the moment it exists: an export holds the device's
 * private memories too.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { VERSION } from "../../core/version.ts";
import { createPrivateFile } from "../../platform/private-file.ts";
import type { Transfer, TransferFilter } from "../store/types.ts";
import { jsonlHeader, jsonlRecord, toMarkdown } from "./format.ts";

/** Bytes gathered before each write. */
const CHUNK = 1 << 20;

export interface ExportTarget {
  write(text: string): unknown;
}

/** Writes the JSON Lines export to `target`; returns how many memories it holds. */
export async function exportJsonl(
  store: Transfer,
  deviceId: string,
  target: ExportTarget,
  filter: TransferFilter,
): Promise<number> {
  let buf = `${jsonlHeader({ version: VERSION, exported_at: new Date().toISOString(), device_id: deviceId })}\n`;
  let n = 0;
  for (const m of store.exportMemories(filter)) {
    buf += `${jsonlRecord(m)}\n`;
    n++;
    if (buf.length >= CHUNK) {
      await target.write(buf);
      buf = "";
    }
  }
  await target.write(buf);
  return n;
}

/** Writes the JSON Lines export to `path` (atomically); returns how many memories it holds. */
export async function exportJsonlFile(
  store: Transfer,
  deviceId: string,
  path: string,
  filter: TransferFilter,
): Promise<number> {
  const tmp = `${path}.partial-${process.pid}`;
  rmSync(tmp, { force: true });
  createPrivateFile(tmp);
  const writer = Bun.file(tmp).writer();
  try {
    const n = await exportJsonl(store, deviceId, { write: (t) => writer.write(t) }, filter);
    await writer.end();
    renameSync(tmp, path);
    return n;
  } catch (err) {
    await Promise.resolve(writer.end()).catch(() => {});
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes one `<id>.md` per live memory into `dir`; returns how many. */
export function exportMarkdown(store: Transfer, dir: string, filter: TransferFilter): number {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  let n = 0;
  for (const m of store.exportMemories({ ...filter, includeDeleted: false })) {
    writeFileSync(join(dir, `${m.id}.md`), toMarkdown(m), { mode: 0o600 });
    n++;
  }
  return n;
}
