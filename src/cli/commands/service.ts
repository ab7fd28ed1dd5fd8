/**
 * `dionysus service install|uninstall|status [--vps] [--system]`: runs the edge agent (or, with
 * `--vps`, the VPS) as a service: a systemd user unit on Linux (a system unit with `--system`), a
 * launchd agent on macOS. The files come from src/platform/service; Windows is documented only.
 */
import { homedir } from "node:os";
import { resolve } from "node:path";
import type { Command } from "commander";
import type { ServiceReport } from "../../platform/service/manager.ts";
import {
  installService,
  type Runner,
  serviceStatus,
  uninstallService,
} from "../../platform/service/manager.ts";
import type { ServiceRole, ServiceScope } from "../../platform/service/units.ts";
import { resolveDataDir } from "../env.ts";
import { action, printJson } from "../output.ts";

interface ServiceOpts {
  vps?: boolean;
  system?: boolean;
  json?: boolean;
  dataDir?: string;
}

const run: Runner = async (argv) => {
  const p = Bun.spawn(argv, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
    p.exited,
  ]);
  return { code, stdout, stderr };
};

function env() {
  return {
    platform: process.platform,
    home: homedir(),
    ...(process.env.XDG_CONFIG_HOME ? { xdgConfigHome: process.env.XDG_CONFIG_HOME } : {}),
    uid: process.getuid?.() ?? 0,
    run,
  };
}

/** How this program is started again: the compiled binary, or Bun with the entry script. */
function selfCommand(): string[] {
  const main = Bun.main;
  return /\.[cm]?[jt]s$/.test(main) ? [process.execPath, resolve(main)] : [process.execPath];
}

function print(report: ServiceReport, verb: string, json: boolean | undefined): void {
  if (json) {
    printJson(report);
    return;
  }
  const what = report.role === "edge" ? "edge agent" : "VPS";
  process.stdout.write(
    `${verb}${report.name} (${what}, ${report.scope}): ${report.installed ? report.file : "not installed"}; state: ${report.state}\n`,
  );
}

export function registerService(program: Command): void {
  const service = program
    .command("service")
    .description("run the agent (or the VPS) as a service: systemd on Linux, launchd on macOS");
  const common = (cmd: Command) =>
    cmd
      .option("--vps", "the VPS (`dionysus vps serve`) instead of the edge agent")
      .option("--system", "a system service (root) instead of a user service")
      .option("--json", "print the result as JSON");
  const role = (o: ServiceOpts): ServiceRole => (o.vps ? "vps" : "edge");
  const scope = (o: ServiceOpts): ServiceScope => (o.system ? "system" : "user");

  common(service.command("install").description("write the service file, enable and start it")).action(
    action(async (o: ServiceOpts, cmd: Command) => {
      const flag = cmd.optsWithGlobals<{ dataDir?: string }>().dataDir;
      const r = role(o);
      const report = await installService(env(), {
        role: r,
        scope: scope(o),
        command: selfCommand(),
        dataDir: resolve(resolveDataDir(flag, r)),
        home: homedir(),
      });
      print(report, "installed ", o.json);
    }),
  );
  common(service.command("uninstall").description("stop and disable the service, remove its file")).action(
    action(async (o: ServiceOpts) => {
      print(await uninstallService(env(), role(o), scope(o)), "removed ", o.json);
    }),
  );
  common(service.command("status").description("whether the service is installed and running")).action(
    action(async (o: ServiceOpts) => {
      print(await serviceStatus(env(), role(o), scope(o)), "", o.json);
    }),
  );
}
