#!/usr/bin/env bun
/** Entry point of the `dionysus` binary. */
import { CommanderError } from "commander";
import { printJson, reportError } from "./output.ts";
import { asksVersionJson, buildProgram, versionInfo } from "./program.ts";

// Testing knob: DIONYSUS_DEBUG_CLOCK_SKEW_MS makes this process's clock (Date.now) run that many
// ms ahead (or behind, if negative) of the real one, to simulate a device with a wrong clock.
const skew = Number(process.env.DIONYSUS_DEBUG_CLOCK_SKEW_MS ?? 0);
if (Number.isFinite(skew) && skew !== 0) {
  const realNow = Date.now;
  Date.now = () => realNow() + skew;
}

try {
  if (asksVersionJson(process.argv.slice(2))) printJson(versionInfo());
  else await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed its message already; help and --version end with exit code 0.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else process.exitCode = reportError(err);
}
