/**
 * `dionysus import FILE|DIR`: memories from a `dionysus export` (JSON Lines, or its Markdown files)
 * written by last-write-wins and queued for the VPS like local writes. It writes the database
 * directly (safe beside a running daemon, which sends the writes at its next cycle). Bad records
 * are reported one line each on stderr; the good ones still go in.
 */
import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { type ImportProblem, importPath } from "../../edge/export/import.ts";
import { edgeConfig, openEdgeStore } from "../edge-command.ts";
import { action, printJson } from "../output.ts";

/** A bar on stderr when it is a terminal, redrawn in place; with `lines` (--progress) and no
 * terminal, one line `import N%` per percent instead (for scripts watching an import). */
function progressBar(lines: boolean, stream: NodeJS.WriteStream = process.stderr) {
  let drawn = -1;
  return {
    update(done: number, total: number) {
      if ((!stream.isTTY && !lines) || total <= 0) return;
      const pct = Math.min(100, Math.floor((done / total) * 100));
      if (pct === drawn) return;
      drawn = pct;
      if (!stream.isTTY) {
        stream.write(`import ${pct}%\n`);
        return;
      }
      const width = 30;
      const filled = Math.round((pct / 100) * width);
      stream.write(`\r\x1b[2Kimport [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${pct}%`);
    },
    done() {
      if (drawn >= 0 && stream.isTTY) stream.write("\r\x1b[2K");
    },
  };
}

export function registerImport(program: Command): void {
  program
    .command("import")
    .description("import memories from a dionysus export (JSON Lines file, or a directory of Markdown files)")
    .argument("<path>", "the export file, or the Markdown directory")
    .option("--json", "print the summary and every refused record as JSON")
    .option("--progress", "report progress on stderr even when it is not a terminal (a line per percent)")
    .action(
      action(async (path: string, opts: { json?: boolean; progress?: boolean }, cmd: Command) => {
        const config = edgeConfig(cmd);
        const problems: ImportProblem[] = [];
        const bar = progressBar(opts.progress === true);
        const store = openEdgeStore(cmd);
        let summary: Awaited<ReturnType<typeof importPath>>;
        try {
          summary = await importPath(store, path, {
            maxContentBytes: config.max_content_bytes,
            now: Date.now,
            onProgress: (d, t) => bar.update(d, t),
            onProblem: (p) => {
              problems.push(p);
              if (!opts.json) {
                bar.done();
                process.stderr.write(`dionysus: ${p.where}: ${p.reason}\n`);
              }
            },
          });
        } finally {
          bar.done();
          store.close();
        }
        const written = summary.created + summary.updated;
        if (opts.json) printJson({ ...summary, problems });
        else
          process.stdout.write(
            `imported ${written} of ${summary.records} records from ${path}: ${summary.created} new, ${summary.updated} updated, ${summary.unchanged} unchanged, ${summary.older} older than the stored version (kept), ${summary.bad} refused${written ? "; queued for sync" : ""}\n`,
          );
        if (summary.bad > 0)
          throw new DionysusError(
            "invalid_input",
            `${summary.bad} of ${summary.records} records were refused (listed above); the others were imported`,
          );
      }),
    );
}
