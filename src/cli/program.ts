/** The commander program: every command registers itself from `commands/<name>.ts`. */
import { Command } from "commander";
import { VERSION } from "../core/version.ts";
import { registerVps } from "./commands/vps.ts";

export function buildProgram(): Command {
  const program = new Command("dionysus")
    .description("Local-first memory for personal AI assistants")
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError("(run dionysus --help for usage)")
    .configureOutput({ outputError: (str, write) => write(str) });
  registerVps(program);
  return program;
}
