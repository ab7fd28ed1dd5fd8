/**
 * Installs, removes and inspects the service: writes the file of ./units.ts and tells the
 * service manager (systemctl, launchctl) through an injected runner, so tests can run every step
 * in a temporary HOME without touching the real one. Other platforms are refused.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { DionysusError } from "../../core/errors.ts";
import {
  launchdLabel,
  type ServicePlatform,
  type ServiceRole,
  type ServiceScope,
  type ServiceSpec,
  serviceFile,
  serviceFileContent,
  unitName,
} from "./units.ts";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}
/** Runs a command (argv) to completion. */
export type Runner = (argv: string[]) => Promise<RunResult>;

export interface ServiceEnv {
  platform: string;
  home: string;
  xdgConfigHome?: string;
  /** The user id (launchd's `gui/<uid>` domain). */
  uid: number;
  run: Runner;
}

export interface ServiceReport {
  platform: ServicePlatform;
  role: ServiceRole;
  scope: ServiceScope;
  name: string;
  file: string;
  installed: boolean;
  /** What the service manager says: `active`, `inactive`, `failed`, `running`, ... or `unknown`. */
  state: string;
}

/** The platforms with a service manager we drive; anything else is a usage error (exit 2). */
export function supportedPlatform(platform: string): ServicePlatform {
  if (platform === "linux" || platform === "darwin") return platform;
  throw new DionysusError(
    "invalid_input",
    platform === "win32"
      ? "dionysus service is not supported on Windows; see the README (sc.exe or Task Scheduler) to run it as a service"
      : `dionysus service is not supported on ${platform} (only Linux with systemd and macOS with launchd)`,
  );
}

function where(env: ServiceEnv, role: ServiceRole, scope: ServiceScope) {
  const platform = supportedPlatform(env.platform);
  const file = serviceFile(platform, scope, role, env.home, env.xdgConfigHome);
  const name = platform === "darwin" ? launchdLabel(role) : `${unitName(role)}.service`;
  return { platform, file, name };
}

const systemctl = (scope: ServiceScope, ...args: string[]) =>
  scope === "user" ? ["systemctl", "--user", ...args] : ["systemctl", ...args];
const launchDomain = (env: ServiceEnv, scope: ServiceScope) =>
  scope === "system" ? "system" : `gui/${env.uid}`;

async function must(env: ServiceEnv, argv: string[]): Promise<void> {
  let r: RunResult;
  try {
    r = await env.run(argv);
  } catch (cause) {
    throw new DionysusError("unavailable", `could not run ${argv[0]}: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (r.code !== 0)
    throw new DionysusError(
      "unavailable",
      `${argv.join(" ")} failed (exit ${r.code}): ${(r.stderr || r.stdout).trim().split("\n")[0] ?? ""}`,
    );
}

/** Writes the service file and starts the service (now and at every login or boot). */
export async function installService(env: ServiceEnv, spec: ServiceSpec): Promise<ServiceReport> {
  const { platform, file, name } = where(env, spec.role, spec.scope);
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, serviceFileContent(platform, spec), { mode: 0o644 });
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM" && code !== "EROFS") throw cause;
    throw new DionysusError(
      "forbidden",
      `cannot write ${file} (${code})${spec.scope === "system" ? "; a --system service needs root" : ""}`,
      { cause },
    );
  }
  if (platform === "linux") {
    await must(env, systemctl(spec.scope, "daemon-reload"));
    await must(env, systemctl(spec.scope, "enable", "--now", name));
  } else {
    // A loaded agent must be booted out before the new plist is bootstrapped; not loaded is fine.
    await env
      .run(["launchctl", "bootout", `${launchDomain(env, spec.scope)}/${name}`])
      .catch(() => undefined);
    await must(env, ["launchctl", "bootstrap", launchDomain(env, spec.scope), file]);
  }
  return serviceStatus(env, spec.role, spec.scope);
}

/** Stops the service and removes its file. Not installed: says so, changes nothing. */
export async function uninstallService(
  env: ServiceEnv,
  role: ServiceRole,
  scope: ServiceScope,
): Promise<ServiceReport> {
  const { platform, file, name } = where(env, role, scope);
  if (!existsSync(file)) throw new DionysusError("not_found", `the service is not installed (no ${file})`);
  if (platform === "linux") {
    await must(env, systemctl(scope, "disable", "--now", name));
    rmSync(file);
    await must(env, systemctl(scope, "daemon-reload"));
  } else {
    await env.run(["launchctl", "bootout", `${launchDomain(env, scope)}/${name}`]).catch(() => undefined);
    rmSync(file);
  }
  return serviceStatus(env, role, scope);
}

/** Whether the file is there and what the service manager says of the service. */
export async function serviceStatus(
  env: ServiceEnv,
  role: ServiceRole,
  scope: ServiceScope,
): Promise<ServiceReport> {
  const { platform, file, name } = where(env, role, scope);
  const installed = existsSync(file);
  let state = "unknown";
  try {
    if (platform === "linux") {
      // is-active prints the state and exits non-zero for anything but active.
      const r = await env.run(systemctl(scope, "is-active", name));
      state = r.stdout.trim() || "unknown";
    } else {
      const r = await env.run(["launchctl", "print", `${launchDomain(env, scope)}/${name}`]);
      state = r.code !== 0 ? "not loaded" : (/^\s*state = (.+)$/m.exec(r.stdout)?.[1]?.trim() ?? "loaded");
    }
  } catch {
    // No service manager here (a container): the state stays unknown.
  }
  return { platform, role, scope, name, file, installed, state };
}
