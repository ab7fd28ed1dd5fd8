/**
 * bench/RESULTS.md is the history of every measurement: a benchmark adds its entry at the end of
 * its own section (made, with its intro, when absent) and never rewrites earlier runs.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Adds `entry` at the end of the section `heading` of bench/RESULTS.md (made with `intro` if absent). */
export function appendToSection(heading: string, intro: string, entry: string): void {
  const file = join(import.meta.dir, "RESULTS.md");
  let text = existsSync(file) ? readFileSync(file, "utf8") : "# Benchmark results\n";
  const at = text.indexOf(heading);
  if (at < 0) {
    text = `${text.replace(/\n*$/, "\n")}\n${heading}\n\n${intro}\n\n${entry}`;
  } else {
    const next = text.indexOf("\n## ", at + heading.length);
    const end = next < 0 ? text.length : next + 1;
    text = `${text.slice(0, end).replace(/\n*$/, "\n")}\n${entry}${next < 0 ? "" : `\n${text.slice(end)}`}`;
  }
  writeFileSync(file, text);
  console.log(`added to ${file}`);
}
