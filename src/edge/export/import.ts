/**
 * `dionysus import FILE|DIR`: reads a JSON Lines export (or a directory of Markdown files, or one
 * Markdown file) record by record, checks each, and hands the good ones to the store in batches
 * (one transaction each) that write by last-write-wins. A bad record (not UTF-8, not JSON, cut off,
 * from a newer format, not a valid memory) is reported with its line number or file name and
 * skipped; nothing already stored is touched by it.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DionysusError } from "../../core/errors.ts";
import type { ImportCounts, ImportVersion, IndexUpkeep, Transfer } from "../store/types.ts";
import { fromMarkdown, type JsonlState, readJsonlLine, reasonOf } from "./format.ts";

/** Versions per store transaction: large enough that the store indexes them set-based. */
const BATCH = 5000;

export interface ImportProblem {
  /** `line 12` or the file's name. */
  where: string;
  reason: string;
}

export interface ImportSummary extends ImportCounts {
  format: "jsonl" | "markdown";
  /** Records read (good and bad; the header and blank lines are not records). */
  records: number;
  /** Records refused. */
  bad: number;
  /** The keyword index merged after the import wrote (see store/sqlite/index-merge.ts). */
  index?: { segments_before: number; segments: number; ms: number };
}

export interface ImportOptions {
  maxContentBytes: number;
  /** The device's clock (ms). */
  now: () => number;
  /** Called with the work done so far and the total (bytes of a file, or files). */
  onProgress?: (done: number, total: number) => void;
  onProblem: (p: ImportProblem) => void;
  /** Merge the keyword index at the end once the import wrote at least this many memories
   * (default: one batch, 5,000). A smaller import leaves it to the daemon's idle merge: merging
   * rewrites the whole index (1–2 s at 100,000 memories). */
  mergeIndexAfter?: number;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Imports a JSON Lines file, a directory of Markdown files or one Markdown file. After a large
 * import, merges the keyword index (each batch added a segment; merged, recall reads one), in
 * slices that a daemon beside it can interleave with. */
export async function importPath(
  store: Transfer & IndexUpkeep,
  path: string,
  opts: ImportOptions,
): Promise<ImportSummary> {
  const sum = await importAny(store, path, opts);
  const written = sum.created + sum.updated;
  if (written > 0 && written >= (opts.mergeIndexAfter ?? BATCH)) {
    const r = store.mergeIndex({ force: true });
    sum.index = { segments_before: r.segmentsBefore, segments: r.segments, ms: Math.round(r.ms) };
  }
  return sum;
}

async function importAny(store: Transfer, path: string, opts: ImportOptions): Promise<ImportSummary> {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(path);
  } catch {
    throw new DionysusError("not_found", `${path} does not exist`);
  }
  // Nothing to read is a mistake (a wrong path, an export that never ran), not "0 imported".
  if (st.isDirectory()) {
    const files = markdownFiles(path);
    if (files.length === 0)
      throw new DionysusError("invalid_input", `${path} holds no Markdown (.md) files to import`);
    return importMarkdownFiles(store, path, files, opts);
  }
  if (st.size === 0) throw new DionysusError("invalid_input", `${path} is empty: not a Dionysus export`);
  if (path.toLowerCase().endsWith(".md")) return importMarkdownFiles(store, "", [path], opts);
  return importJsonl(store, path, st.size, opts);
}

function markdownFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.toLowerCase().endsWith(".md"))
    .sort()
    .map((f) => join(dir, f));
}

function emptySummary(format: ImportSummary["format"]): ImportSummary {
  return { format, records: 0, bad: 0, created: 0, updated: 0, unchanged: 0, older: 0 };
}

function flush(store: Transfer, batch: ImportVersion[], sum: ImportSummary): void {
  if (batch.length === 0) return;
  const c = store.importMemories(batch);
  sum.created += c.created;
  sum.updated += c.updated;
  sum.unchanged += c.unchanged;
  sum.older += c.older;
  batch.length = 0;
}

async function importJsonl(
  store: Transfer,
  path: string,
  total: number,
  opts: ImportOptions,
): Promise<ImportSummary> {
  const sum = emptySummary("jsonl");
  const state: JsonlState = { format: 1 };
  const batch: ImportVersion[] = [];
  const now = opts.now();
  let lineNo = 0;
  let done = 0;

  const take = (bytes: Uint8Array, last: boolean) => {
    lineNo++;
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      sum.records++;
      sum.bad++;
      opts.onProblem({ where: `line ${lineNo}`, reason: "not valid UTF-8" });
      return;
    }
    if (lineNo === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    try {
      const r = readJsonlLine(text, state, { maxContentBytes: opts.maxContentBytes, now, last });
      if (r === "blank") return;
      if (r === "header") return;
      sum.records++;
      batch.push(r);
    } catch (err) {
      sum.records++;
      sum.bad++;
      opts.onProblem({ where: `line ${lineNo}`, reason: reasonOf(err) });
    }
    // Outside the try: a store failure stops the import, it is not a bad line.
    if (batch.length >= BATCH) flush(store, batch, sum);
  };

  let rest: Uint8Array = new Uint8Array(0);
  for await (const chunk of Bun.file(path).stream()) {
    let data: Uint8Array = chunk;
    if (rest.length > 0) {
      data = new Uint8Array(rest.length + chunk.length);
      data.set(rest);
      data.set(chunk, rest.length);
    }
    let start = 0;
    for (let nl = data.indexOf(10, start); nl !== -1; nl = data.indexOf(10, start)) {
      const end = nl > start && data[nl - 1] === 13 ? nl - 1 : nl;
      take(data.subarray(start, end), false);
      start = nl + 1;
    }
    rest = data.slice(start);
    done += chunk.length;
    opts.onProgress?.(done, total);
  }
  if (rest.length > 0) take(rest, true);
  flush(store, batch, sum);
  return sum;
}

async function importMarkdownFiles(
  store: Transfer,
  dir: string,
  files: string[],
  opts: ImportOptions,
): Promise<ImportSummary> {
  const sum = emptySummary("markdown");
  const batch: ImportVersion[] = [];
  const now = opts.now();
  for (const [i, file] of files.entries()) {
    sum.records++;
    const where = dir ? file.slice(dir.length).replace(/^[/\\]/, "") : file;
    try {
      let text: string;
      try {
        text = utf8.decode(await Bun.file(file).bytes());
      } catch (err) {
        throw err instanceof TypeError ? new DionysusError("invalid_input", "not valid UTF-8") : err;
      }
      batch.push(fromMarkdown(text, { maxContentBytes: opts.maxContentBytes, now }));
    } catch (err) {
      sum.bad++;
      opts.onProblem({ where, reason: reasonOf(err) });
    }
    if (batch.length >= BATCH) flush(store, batch, sum);
    opts.onProgress?.(i + 1, files.length);
  }
  flush(store, batch, sum);
  return sum;
}
