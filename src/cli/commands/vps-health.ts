/**
 * `dionysus vps health [--url URL]`: asks a running VPS for `GET /health` and exits 0 only when it
 * answers ok. The container image holds nothing but the binary (no curl), so its HEALTHCHECK and
 * compose's use this. Default URL: this machine's loopback on the configured port.
 */
import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { loadVpsConfig } from "../env.ts";
import { action, printJson } from "../output.ts";

export function registerVpsHealth(vps: Command): void {
  vps
    .command("health")
    .description("check a running VPS's /health (exit 0 when ok; for container health checks)")
    .option("--url <url>", "the VPS's base URL (default http://127.0.0.1:<port>)")
    .option("--timeout <seconds>", "how long to wait for the answer", "5")
    .option("--json", "print the answer as JSON")
    .action(
      action(async (opts: { url?: string; timeout: string; json?: boolean; dataDir?: string }) => {
        const seconds = Number(opts.timeout);
        if (!Number.isFinite(seconds) || seconds <= 0)
          throw new DionysusError("invalid_input", "--timeout must be a positive number of seconds");
        const base = opts.url ?? `http://127.0.0.1:${loadVpsConfig({ dataDir: opts.dataDir }).port}`;
        let url: URL;
        try {
          url = new URL("/health", base);
        } catch {
          throw new DionysusError("invalid_input", `not a URL: ${base}`);
        }
        let body: { status?: string };
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(seconds * 1000) });
          body = (await res.json()) as { status?: string };
        } catch (cause) {
          throw new DionysusError("unavailable", `no answer from ${url}: ${(cause as Error).message}`, {
            cause,
          });
        }
        if (opts.json) printJson(body);
        if (body.status !== "ok")
          throw new DionysusError("unavailable", `${url} answered status ${String(body.status)}`);
        if (!opts.json) process.stdout.write(`ok ${url}\n`);
      }),
    );
}
