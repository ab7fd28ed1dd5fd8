import type { Command } from "commander";
import { DionysusError, type ErrorCode, ErrorCodes, exitCodeFor } from "../../core/errors.ts";
import { AskRequest } from "../../core/protocol/heavy.ts";
import { parseLimit, withEdge } from "../edge-command.ts";
import { action } from "../output.ts";

export function registerAsk(program: Command): void {
  program
    .command("ask")
    .description("ask a question about your memories: the VPS's LLM answers from the most relevant ones")
    .argument("<question...>", "the question")
    .option("-n, --limit <n>", "how many memories the model reads, 1..100", "8")
    .option("--json", "print the streamed events as JSON lines ({type: sources | delta | done | error})")
    .action(
      action(async (words: string[], opts: { limit: string; json?: boolean }, cmd: Command) => {
        const parsed = AskRequest.safeParse({
          question: words.join(" "),
          limit: parseLimit(opts.limit, "limit"),
        });
        if (!parsed.success) throw new DionysusError("invalid_input", "the question must not be empty");
        let sources: string[] = [];
        let failure: DionysusError | undefined;
        let wrote = false;
        await withEdge(cmd, (c) =>
          c.ask(parsed.data, (ev) => {
            if (opts.json) {
              process.stdout.write(`${JSON.stringify(ev)}\n`);
              if (ev.type === "error") process.exitCode = 5;
              return;
            }
            if (ev.type === "sources") sources = ev.memories.map((m) => m.id);
            else if (ev.type === "delta") {
              process.stdout.write(ev.text);
              wrote = true;
            } else if (ev.type === "error") {
              const code = (ev.code in ErrorCodes ? ev.code : "unavailable") as ErrorCode;
              failure = new DionysusError(code, `the answer broke off: ${ev.message}`);
            }
          }),
        );
        if (opts.json) return;
        if (wrote) process.stdout.write("\n");
        if (sources.length)
          process.stderr.write(`sources: ${sources.map((id, i) => `[${i + 1}] ${id}`).join("  ")}\n`);
        if (failure) {
          process.stderr.write(`dionysus: ${(failure as DionysusError).message}\n`);
          process.exitCode = exitCodeFor(failure);
        }
      }),
    );
}
