/**
 * `dionysus open [--print]`: the way into the edge daemon's status page. Prints the page's URL
 * (the daemon of this data dir, on loopback) and opens it in the default browser; the page hands
 * the browser its session cookie itself (through `GET /session`), so nothing secret is in the URL.
 */
import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { daemonUrl, pidAlive, readDaemonInfo } from "../../edge/daemon-file.ts";
import { resolveDataDir } from "../env.ts";
import { action, printJson } from "../output.ts";

/** The program that opens a URL in the default browser, per platform. */
function opener(url: string): string[] | undefined {
  if (process.platform === "darwin") return ["open", url];
  if (process.platform === "win32") return ["cmd", "/c", "start", "", url];
  return Bun.which("xdg-open") ? ["xdg-open", url] : undefined;
}

export function registerOpen(program: Command): void {
  program
    .command("open")
    .description("open the running daemon's status page in the browser (prints its URL)")
    .option("--print", "only print the URL")
    .option("--json", "print {url} as JSON (implies --print)")
    .action(
      action(async (opts: { print?: boolean; json?: boolean }, cmd: Command) => {
        const dataDir = resolveDataDir(cmd.optsWithGlobals<{ dataDir?: string }>().dataDir);
        const info = readDaemonInfo(dataDir);
        if (!info || info.port === null || !pidAlive(info.pid))
          throw new DionysusError(
            "unavailable",
            `no daemon runs for ${dataDir}; start it with: dionysus serve`,
          );
        const url = `${daemonUrl(info.host, info.port)}/`;
        if (opts.json) return printJson({ url });
        process.stdout.write(`${url}\n`);
        if (opts.print) return;
        const argv = opener(url);
        if (!argv) {
          process.stderr.write("dionysus: no browser opener found (xdg-open); open the URL above yourself\n");
          return;
        }
        Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).unref();
      }),
    );
}
