import type { Command } from "commander";
import type { Job } from "../../core/protocol/heavy.ts";
import { withEdge } from "../edge-command.ts";
import { formatJob } from "../heavy-format.ts";
import { action, printJson } from "../output.ts";

export function registerConsolidate(program: Command): void {
  program
    .command("consolidate")
    .description(
      "merge duplicate memories, refresh the knowledge graph and write a summary memory; runs on the VPS",
    )
    .option("-w, --wait", "wait for the job to finish, showing its progress")
    .option("--json", "print the job as JSON ({job, started}); with --wait, the finished job")
    .action(
      action(async (opts: { wait?: boolean; json?: boolean }, cmd: Command) => {
        await withEdge(cmd, async (c) => {
          const { job, started } = await c.consolidate();
          if (!opts.wait) {
            if (opts.json) return printJson({ job, started });
            process.stdout.write(
              `${started ? "Started" : "Already in progress:"} consolidation ${job.id} (${job.status}).\n` +
                `Follow it with: dionysus consolidate --wait (or GET /v1/jobs/${job.id})\n`,
            );
            return;
          }
          const begun = Date.now();
          let last: Job = job;
          const say = (j: Job) => {
            if (!opts.json)
              process.stderr.write(
                `${((Date.now() - begun) / 1000).toFixed(1).padStart(6)} s  ${j.status}\n`,
              );
          };
          say(job);
          while (last.status === "queued" || last.status === "running") {
            const next = await c.job(job.id, 20);
            if (next.status !== last.status) say(next);
            last = next;
          }
          if (opts.json) return printJson({ job: last, started });
          process.stdout.write(`${formatJob(last)}\n`);
          if (last.status === "failed") process.exitCode = 1;
        });
      }),
    );
}
