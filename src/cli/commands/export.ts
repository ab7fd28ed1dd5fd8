/**
 * `dionysus export [--out FILE] [--format jsonl|markdown] [filters]`: the device's memories in a
 * file others (another device, another install, Obsidian) can read. It reads the database
 * directly, in one snapshot, whether or not a daemon runs (SQLite WAL). The filter flags are those
 * of list and recall; the default scope does not narrow an export (it takes everything unless
 * `--scope` says otherwise).
 */
import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { exportJsonl, exportJsonlFile, exportMarkdown } from "../../edge/export/export.ts";
import { openEdgeStore } from "../edge-command.ts";
import { type FilterFlags, filterFromFlags, withFilterFlags } from "../filter-flags.ts";
import { action, printJson } from "../output.ts";

interface ExportFlags extends FilterFlags {
  out?: string;
  format: string;
  deleted: boolean;
  json?: boolean;
}

export function registerExport(program: Command): void {
  withFilterFlags(
    program
      .command("export")
      .description("write every memory as JSON Lines (default, stdout without --out) or Markdown files")
      .option("-o, --out <path>", "the file to write (a directory with --format markdown)")
      .option("--format <format>", "jsonl or markdown", "jsonl")
      .option("--no-deleted", "leave out tombstones (deletes); Markdown never has them")
      .option("--json", "print {exported, format, out} as JSON when done"),
  ).action(
    action(async (opts: ExportFlags, cmd: Command) => {
      if (opts.format !== "jsonl" && opts.format !== "markdown")
        throw new DionysusError("invalid_input", "--format must be jsonl or markdown");
      if (opts.format === "markdown" && !opts.out)
        throw new DionysusError("invalid_input", "--format markdown needs --out DIR (one file per memory)");
      const filter = { filter: filterFromFlags(opts), includeDeleted: opts.deleted };
      const store = openEdgeStore(cmd);
      let n: number;
      try {
        if (opts.format === "markdown") n = exportMarkdown(store, opts.out!, filter);
        else if (opts.out) n = await exportJsonlFile(store, store.deviceId, opts.out, filter);
        else {
          const out = Bun.stdout.writer();
          n = await exportJsonl(store, store.deviceId, { write: (t) => out.write(t) }, filter);
          await out.flush();
        }
      } finally {
        store.close();
      }
      if (opts.json) return printJson({ exported: n, format: opts.format, out: opts.out ?? null });
      if (opts.out) process.stdout.write(`exported ${n} memories to ${opts.out} (${opts.format})\n`);
    }),
  );
}
