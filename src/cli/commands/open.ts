/**
 * `dionysus open [--print]`: the way into the edge daemon's status page. Prints the page's URL
 * (the daemon of this data dir, on loopback) and opens the browser signed in: with the API token
 * (`<data_dir>/api-token`, which only the daemon's user can read) it asks the daemon for a
 * single-use ticket valid for 60 s (`POST /v1/session/ticket`) and opens
 * `/session?ticket=…&next=/`, which trades it for the session cookie. The printed URL holds no
 * secret; a browser opening it without a session gets the sign-in page (paste the token).
 * `$BROWSER` names the browser to run (as for xdg-open: `%s` is the URL, else it is appended).
 */
import { delimiter } from "node:path";
import type { Command } from "commander";
import { DionysusError, fromProblem } from "../../core/errors.ts";
import { CLIENT_HEADER } from "../../core/protocol/edge-api.ts";
import { apiTokenPath, readApiToken } from "../../edge/api-token.ts";
import { daemonUrl, pidAlive, readDaemonInfo } from "../../edge/daemon-file.ts";
import { resolveDataDir } from "../env.ts";
import { action, printJson } from "../output.ts";

/** The command that opens `url` in the browser: `$BROWSER` (its first entry), else the platform's
 * opener; undefined when there is none. */
export function browserCommand(url: string, env: NodeJS.ProcessEnv = process.env): string[] | undefined {
  const browser = env.BROWSER?.split(delimiter)
    .map((s) => s.trim())
    .find(Boolean);
  if (browser) {
    const argv = browser.split(/\s+/);
    return argv.some((a) => a.includes("%s")) ? argv.map((a) => a.replaceAll("%s", url)) : [...argv, url];
  }
  if (process.platform === "darwin") return ["open", url];
  if (process.platform === "win32") return ["cmd", "/c", "start", "", url];
  return Bun.which("xdg-open") ? ["xdg-open", url] : undefined;
}

/** A ticket for `GET /session` from the daemon at `base`. */
async function sessionTicket(base: string, token: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(`${base}/v1/session/ticket`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, [CLIENT_HEADER]: "cli" },
      signal: AbortSignal.timeout(10_000),
    });
  } catch (cause) {
    throw new DionysusError("unavailable", `the daemon at ${base} does not answer`, { cause });
  }
  if (!res.ok)
    throw fromProblem(
      res.status,
      await res.json().catch(() => null),
      `the daemon refused a session ticket (${res.status})`,
    );
  const body = (await res.json()) as { ticket?: unknown };
  if (typeof body.ticket !== "string")
    throw new DionysusError("internal", "the daemon answered no ticket (is it an older version?)");
  return body.ticket;
}

export function registerOpen(program: Command): void {
  program
    .command("open")
    .description("open the running daemon's status page in the browser, signed in (prints its URL)")
    .option("--print", "only print the URL (a browser opening it shows the sign-in page)")
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
        const base = daemonUrl(info.host, info.port);
        const url = `${base}/`;
        if (opts.json) return printJson({ url });
        process.stdout.write(`${url}\n`);
        if (opts.print) return;
        const tokenFile = apiTokenPath(dataDir);
        if (!browserCommand(url)) {
          process.stderr.write(
            `dionysus: no browser opener found (xdg-open, or set BROWSER); open the URL above yourself and paste the API token from ${tokenFile}\n`,
          );
          return;
        }
        const token = readApiToken(dataDir);
        if (!token)
          throw new DionysusError(
            "unauthorized",
            `cannot read the API token ${tokenFile}; run dionysus open as the user who runs the daemon`,
          );
        const ticket = await sessionTicket(base, token);
        const signedIn = `${base}/session?ticket=${encodeURIComponent(ticket)}&next=/`;
        // The ticket is on the browser's command line only (never printed, never logged).
        const argv = browserCommand(signedIn) as string[];
        try {
          Bun.spawn(argv, { stdin: "ignore", stdout: "ignore", stderr: "ignore" }).unref();
        } catch (cause) {
          throw new DionysusError(
            "unavailable",
            `cannot run the browser (${argv[0]}): ${(cause as Error).message}; open the URL above yourself and paste the API token from ${tokenFile}`,
            { cause },
          );
        }
      }),
    );
}
