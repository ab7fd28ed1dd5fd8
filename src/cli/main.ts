#!/usr/bin/env bun
import { reportError } from "./output.ts";
/** Entry point of the `dionysus` binary. */
import { buildProgram } from "./program.ts";

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.exitCode = reportError(err);
}
