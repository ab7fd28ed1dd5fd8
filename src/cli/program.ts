/** The commander program: every command registers itself from `commands/<name>.ts`. */
import { Command } from "commander";
import { VERSION } from "../core/version.ts";
import { registerForget } from "./commands/forget.ts";
import { registerGet } from "./commands/get.ts";
import { registerIngest } from "./commands/ingest.ts";
import { registerList } from "./commands/list.ts";
import { registerRecall } from "./commands/recall.ts";
import { registerServe } from "./commands/serve.ts";
import { registerStatus } from "./commands/status.ts";

export function buildProgram(): Command {
  const program = new Command("dionysus")
    .description("Local-first memory for personal AI assistants")
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError("(run dionysus --help for usage)")
    .option("--data-dir <dir>", "where the database lives (else DIONYSUS_HOME, else the platform's data dir)")
    .configureOutput({ outputError: (str, write) => write(str) });
  registerServe(program);
  registerIngest(program);
  registerRecall(program);
  registerGet(program);
  registerList(program);
  registerForget(program);
  registerStatus(program);
  return program;
}
