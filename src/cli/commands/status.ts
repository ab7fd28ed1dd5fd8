import type { Command } from "commander";
import { withEdge } from "../edge-command.ts";
import { formatStatus } from "../edge-format.ts";
import { action, printJson } from "../output.ts";

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("show the agent's state: daemon, database, memories, sync queue")
    .option("--json", "print the status as JSON")
    .action(
      action(async (opts: { json?: boolean }, cmd: Command) => {
        const status = await withEdge(cmd, (c) => c.status());
        if (opts.json) return printJson(status);
        process.stdout.write(`${formatStatus(status)}\n`);
      }),
    );
}
