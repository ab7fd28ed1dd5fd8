import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { parseMetaPairs, resolveFilter, TimeBound } from "../../core/filter.ts";
import { MemoryKind, Scope } from "../../core/memory.ts";
import { withEdge } from "../edge-command.ts";
import { action, printJson } from "../output.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Reads all of stdin as UTF-8; invalid bytes are an error, never silently replaced. */
async function readStdin(): Promise<string> {
  if (process.stdin.isTTY)
    throw new DionysusError("invalid_input", "give the memory as an argument, or pipe it on stdin");
  const bytes = new Uint8Array(await Bun.stdin.arrayBuffer());
  try {
    return utf8.decode(bytes).replace(/\r?\n$/, "");
  } catch {
    throw new DionysusError("invalid_input", "stdin is not valid UTF-8; nothing was stored");
  }
}

export function registerIngest(program: Command): void {
  program
    .command("ingest")
    .description("store a memory (TEXT, or stdin when TEXT is omitted)")
    .argument("[text]", "the memory's content")
    .option(
      "-t, --tag <tag>",
      "a tag (repeatable)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("-k, --kind <kind>", "episodic, identity or summary", "episodic")
    .option("--scope <scope>", "where it belongs, e.g. work or project/dionysus (default: DIONYSUS_SCOPE)")
    .option("--occurred-at <time>", "when the event happened: ISO 8601 or relative (2d, 3h)")
    .option("--private", "keep it on this device only: never sent to the VPS")
    .option(
      "--meta <key=value>",
      "a metadata entry (repeatable; numbers and true/false are typed)",
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option("--json", "print the stored memory as JSON")
    .action(
      action(
        async (
          text: string | undefined,
          opts: {
            tag: string[];
            kind: string;
            scope?: string;
            occurredAt?: string;
            private?: boolean;
            meta: string[];
            json?: boolean;
          },
          cmd: Command,
        ) => {
          const kind = MemoryKind.safeParse(opts.kind);
          if (!kind.success)
            throw new DionysusError(
              "invalid_input",
              `--kind must be one of ${MemoryKind.options.join(", ")}`,
            );
          const scope = opts.scope === undefined ? undefined : Scope.safeParse(opts.scope);
          if (scope && !scope.success)
            throw new DionysusError("invalid_input", `--scope: ${scope.error.issues[0]?.message}`);
          let occurredAt: string | undefined;
          if (opts.occurredAt !== undefined) {
            const t = TimeBound.safeParse(opts.occurredAt);
            if (!t.success)
              throw new DionysusError("invalid_input", `--occurred-at: ${t.error.issues[0]?.message}`);
            occurredAt = resolveFilter({ since: t.data }, new Date()).since;
          }
          const metadata = parseMetaPairs(opts.meta, "--meta");
          const content = text ?? (await readStdin());
          const memory = await withEdge(cmd, (c) =>
            c.create({
              content,
              kind: kind.data,
              tags: opts.tag,
              metadata,
              private: opts.private === true,
              ...(scope ? { scope: scope.data } : {}),
              ...(occurredAt ? { occurred_at: occurredAt } : {}),
            }),
          );
          if (opts.json) return printJson(memory);
          const size = new TextEncoder().encode(memory.content).length;
          const tags = memory.tags.length ? `, tags ${memory.tags.join(", ")}` : "";
          process.stdout.write(
            `Stored ${memory.id} (${memory.kind}, ${size} bytes${tags}${memory.scope ? `, scope ${memory.scope}` : ""}); ${memory.private ? "private: kept on this device only" : "queued for sync"}.\n`,
          );
        },
      ),
    );
}
