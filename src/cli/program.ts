/** The commander program: every command registers itself from `commands/<name>.ts`. */
import { Command } from "commander";
import { PROTOCOL_VERSION } from "../core/protocol/sync.ts";
import { VERSION } from "../core/version.ts";
import { registerAsk } from "./commands/ask.ts";
import { registerBackup } from "./commands/backup.ts";
import { registerCompletion } from "./commands/completion.ts";
import { registerConfig } from "./commands/config.ts";
import { registerConflicts } from "./commands/conflicts.ts";
import { registerConsolidate } from "./commands/consolidate.ts";
import { registerExport } from "./commands/export.ts";
import { registerForget } from "./commands/forget.ts";
import { registerGet } from "./commands/get.ts";
import { registerGraph } from "./commands/graph.ts";
import { registerImport } from "./commands/import.ts";
import { registerIngest } from "./commands/ingest.ts";
import { registerList } from "./commands/list.ts";
import { registerLogin } from "./commands/login.ts";
import { registerMcp } from "./commands/mcp.ts";
import { registerOpen } from "./commands/open.ts";
import { registerRecall } from "./commands/recall.ts";
import { registerServe } from "./commands/serve.ts";
import { registerService } from "./commands/service.ts";
import { registerStatus } from "./commands/status.ts";
import { registerSync } from "./commands/sync.ts";
import { registerVps } from "./commands/vps.ts";

/** What `dionysus --version --json` prints: the version of this binary and of the sync protocol it
 * speaks (the VPS reports its own in `GET /health`). */
export function versionInfo(): { version: string; protocol_version: number } {
  return { version: VERSION, protocol_version: PROTOCOL_VERSION };
}

/** Whether the arguments (after the binary's name) ask for {@link versionInfo}: `--version` (or
 * `-V`) with `--json`, and nothing else. Commander's own `--version` prints the plain version. */
export function asksVersionJson(args: readonly string[]): boolean {
  return (
    args.includes("--json") &&
    (args.includes("--version") || args.includes("-V")) &&
    args.every((a) => a === "--json" || a === "--version" || a === "-V")
  );
}

export function buildProgram(): Command {
  const program = new Command("dionysus")
    .description("Local-first memory for personal AI assistants")
    .version(VERSION, "-V, --version", "print the version (with --json: {version, protocol_version})")
    .option("--data-dir <dir>", "where the database lives (else DIONYSUS_HOME, else the platform's data dir)")
    // Usage errors are one plain line and exit code 2, like every other bad input.
    .exitOverride()
    .configureOutput({
      outputError: (str, write) =>
        write(`dionysus: ${str.trim().replace(/^error: /, "")} (see dionysus --help)\n`),
    });
  registerServe(program);
  registerIngest(program);
  registerRecall(program);
  registerGet(program);
  registerList(program);
  registerForget(program);
  registerStatus(program);
  registerLogin(program);
  registerSync(program);
  registerConflicts(program);
  registerGraph(program);
  registerConsolidate(program);
  registerAsk(program);
  registerMcp(program);
  registerExport(program);
  registerImport(program);
  registerBackup(program);
  registerConfig(program);
  registerCompletion(program);
  registerVps(program);
  registerService(program);
  registerOpen(program);
  return program;
}
