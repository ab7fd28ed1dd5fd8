/**
 * The two export formats and how one record of each is read back.
 *
 * JSON Lines: a header line `{"dionysus":"export","format":1,...}`, then one memory per line with
 * every field (the HLC stamp included, so last-write-wins still decides after an import; tombstones
 * included, so deletes travel too). A record may carry `"format"` itself; without it the header's
 * applies. Markdown: one file per memory, `<id>.md`, YAML front matter (id, kind, tags, dates, hlc,
 * origin_device, metadata, scope, source, occurred_at, private) and the content as the body:
 * readable in Obsidian, and importable again.
 *
 * Every record is checked as strictly as a local write (schema, then `validateMemoryFields`), so a
 * bad record is refused with its reason and never stored.
 */
import { DionysusError, describeIssues, isDionysusError } from "../../core/errors.ts";
import { parseHlc } from "../../core/hlc.ts";
import { type LocalMemory, Memory, validateMemoryFields } from "../../core/memory.ts";
import type { ImportVersion } from "../store/types.ts";

/** The export format this binary writes and the newest it reads. */
export const EXPORT_FORMAT = 1;

/** How far ahead of this device's clock an imported stamp may be (the VPS's default skew limit):
 * a stamp further ahead would drag the device's clock into the future. */
export const MAX_IMPORT_SKEW_MS = 60_000;

export interface ExportHeader {
  dionysus: "export";
  format: number;
  version: string;
  exported_at: string;
  device_id: string;
}

export const jsonlHeader = (h: Omit<ExportHeader, "dionysus" | "format">): string =>
  JSON.stringify({ dionysus: "export", format: EXPORT_FORMAT, ...h });

export const jsonlRecord = (m: LocalMemory): string => JSON.stringify(m);

const isHeader = (v: unknown): v is { dionysus: unknown; format?: unknown } =>
  typeof v === "object" && v !== null && (v as { dionysus?: unknown }).dionysus === "export";

/** Why a format number cannot be read, or undefined when it can. */
function newerFormat(format: unknown): string | undefined {
  if (format === undefined) return undefined;
  if (typeof format !== "number" || !Number.isInteger(format) || format < 1)
    return `format ${JSON.stringify(format)} is not an export format`;
  if (format > EXPORT_FORMAT)
    return `written by a newer dionysus (export format ${format}; this one reads up to ${EXPORT_FORMAT})`;
  return undefined;
}

/** Checks a decoded record as a memory; throws DionysusError with the reason. `private: true`
 * (a device-only memory of the exporting device) is carried over. */
export function checkRecord(value: unknown, opts: { maxContentBytes: number; now: number }): ImportVersion {
  const r = Memory.safeParse(value);
  if (!r.success) throw new DionysusError("invalid_input", describeIssues(r.error.issues));
  const m = r.data;
  if (!m.deleted) validateMemoryFields(m, opts.maxContentBytes);
  const stamp = parseHlc(m.hlc);
  if (stamp && stamp.ms > opts.now + MAX_IMPORT_SKEW_MS)
    throw new DionysusError(
      "invalid_input",
      `hlc ${m.hlc} is more than ${MAX_IMPORT_SKEW_MS / 1000} s ahead of this device's clock`,
    );
  return { memory: m, private: (value as { private?: unknown }).private === true };
}

export const reasonOf = (err: unknown): string =>
  isDionysusError(err) ? err.message : err instanceof Error ? err.message : String(err);

/** State carried from line to line of one JSON Lines file. */
export interface JsonlState {
  format: number;
}

/**
 * Reads one JSON Lines line (already decoded): a memory, `"header"` for the header line, `"blank"`
 * for an empty line; throws DionysusError for a bad one. `last` says the line ended the file
 * without a newline (a cut-off file shows there).
 */
export function readJsonlLine(
  text: string,
  state: JsonlState,
  opts: { maxContentBytes: number; now: number; last: boolean },
): ImportVersion | "header" | "blank" {
  if (text.trim() === "") return "blank";
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new DionysusError(
      "invalid_input",
      opts.last ? "not valid JSON (the file looks truncated here)" : "not valid JSON",
    );
  }
  if (isHeader(value)) {
    const newer = newerFormat(value.format ?? EXPORT_FORMAT);
    state.format = typeof value.format === "number" ? value.format : EXPORT_FORMAT;
    if (newer) throw new DionysusError("invalid_input", newer);
    return "header";
  }
  const own = (value as { format?: unknown } | null)?.format;
  const newer = newerFormat(own ?? state.format);
  if (newer) throw new DionysusError("invalid_input", newer);
  return checkRecord(value, opts);
}

/** A YAML scalar: JSON is valid YAML, and says strings, dates and nesting without ambiguity. */
const y = (v: unknown): string => JSON.stringify(v);

/** One memory as Markdown with front matter. */
export function toMarkdown(m: LocalMemory): string {
  const lines = [
    "---",
    `id: ${y(m.id)}`,
    `kind: ${y(m.kind)}`,
    `tags: [${m.tags.map(y).join(", ")}]`,
    `created_at: ${y(m.created_at)}`,
    `updated_at: ${y(m.updated_at)}`,
    `hlc: ${y(m.hlc)}`,
    `origin_device: ${y(m.origin_device)}`,
    `metadata: ${y(m.metadata)}`,
    `scope: ${y(m.scope)}`,
    `source: ${y(m.source)}`,
    `occurred_at: ${y(m.occurred_at)}`,
    `private: ${y(m.private)}`,
    `format: ${EXPORT_FORMAT}`,
    "---",
    "",
  ];
  return `${lines.join("\n")}${m.content}\n`;
}

/** Reads one Markdown file back into a memory; throws DionysusError for a bad one. */
export function fromMarkdown(text: string, opts: { maxContentBytes: number; now: number }): ImportVersion {
  const m = /^---\r?\n([\s\S]*?)\r?\n---\r?\n?/.exec(text);
  if (!m) throw new DionysusError("invalid_input", "no front matter (a --- block at the top)");
  let front: unknown;
  try {
    front = Bun.YAML.parse(m[1]!);
  } catch (cause) {
    throw new DionysusError("invalid_input", `front matter is not valid YAML (${reasonOf(cause)})`);
  }
  if (typeof front !== "object" || front === null || Array.isArray(front))
    throw new DionysusError("invalid_input", "front matter must be a mapping");
  const f = front as Record<string, unknown>;
  const newer = newerFormat(f.format);
  if (newer) throw new DionysusError("invalid_input", newer);
  // The body is the content; the newline the export added after it is not part of it.
  const content = text.slice(m[0].length).replace(/\r?\n$/, "");
  // YAML reads an unquoted date as a Date; an Obsidian user may have written one.
  const date = (v: unknown) => (v instanceof Date ? v.toISOString() : v);
  const { format: _format, ...fields } = f;
  return checkRecord(
    {
      tags: [],
      metadata: {},
      ...fields,
      created_at: date(f.created_at),
      updated_at: date(f.updated_at),
      ...(f.occurred_at ? { occurred_at: date(f.occurred_at) } : {}),
      content,
      deleted: false,
    },
    opts,
  );
}
