/**
 * The files that run Dionysus as a service, made by pure functions so that tests can check them
 * (`systemd-analyze verify`, a plist parse) without installing anything: a systemd unit on Linux
 * (user or system), a launchd property list on macOS, and the Windows commands the docs show.
 */
import { DionysusError } from "../../core/errors.ts";

export type ServiceRole = "edge" | "vps";
export type ServiceScope = "user" | "system";
export type ServicePlatform = "linux" | "darwin";

export interface ServiceSpec {
  role: ServiceRole;
  scope: ServiceScope;
  /** The program and its first arguments: the compiled binary, or `bun src/cli/main.ts`. */
  command: string[];
  /** The data dir passed as `--data-dir` (a system unit uses its StateDirectory instead). */
  dataDir: string;
  /** The user's home (launchd log files). */
  home: string;
}

/** `dionysus` / `dionysus-vps`: the systemd unit's name without `.service`. */
export const unitName = (role: ServiceRole) => (role === "edge" ? "dionysus" : "dionysus-vps");
/** The launchd label. */
export const launchdLabel = (role: ServiceRole) =>
  role === "edge" ? "dev.dionysus.agent" : "dev.dionysus.vps";

/** Where a system unit keeps its data (systemd's StateDirectory under /var/lib). */
export const systemDataDir = (role: ServiceRole) => `/var/lib/${unitName(role)}`;

/** The arguments after the command: `serve` or `vps serve`, with the data dir. */
export function serveArgs(spec: ServiceSpec, dataDir = spec.dataDir): string[] {
  return spec.role === "edge" ? ["serve", "--data-dir", dataDir] : ["vps", "serve", "--data-dir", dataDir];
}

/** One word of ExecStart: quoted when needed; `%` and `$` escaped (systemd expands them). A line
 * break (or another control character) would end the line and start a directive of its own, so it
 * is refused. */
export function systemdWord(word: string): string {
  if ([...word].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f))
    throw new DionysusError(
      "invalid_input",
      `${JSON.stringify(word)}: a control character (a line break) cannot go into a service file`,
    );
  const escaped = word.replaceAll("%", "%%").replaceAll("$", "$$$$");
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped;
  return `"${escaped.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
}

export function systemdUnit(spec: ServiceSpec): string {
  const system = spec.scope === "system";
  const dataDir = system ? systemDataDir(spec.role) : spec.dataDir;
  const exec = [...spec.command, ...serveArgs(spec, dataDir)].map(systemdWord).join(" ");
  const what =
    spec.role === "edge"
      ? "Dionysus edge agent (local memory API and sync)"
      : "Dionysus VPS (sync server and heavy queries)";
  const envFile = system
    ? `/etc/dionysus/${unitName(spec.role)}.env`
    : `%h/.config/dionysus/${unitName(spec.role)}.env`;
  const lines = [
    "[Unit]",
    `Description=${what}`,
    "After=network-online.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=simple",
    `ExecStart=${exec}`,
    // Optional settings (DATABASE_URL, DIONYSUS_VPS_*): the file may be missing.
    `EnvironmentFile=-${envFile}`,
    "Restart=on-failure",
    "RestartSec=5",
    // SIGTERM is the clean stop both servers handle.
    "KillSignal=SIGTERM",
    "TimeoutStopSec=30",
    "NoNewPrivileges=yes",
  ];
  if (system)
    lines.push(
      "DynamicUser=yes",
      `StateDirectory=${unitName(spec.role)}`,
      "StateDirectoryMode=0700",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
    );
  lines.push("", "[Install]", `WantedBy=${system ? "multi-user.target" : "default.target"}`, "");
  return lines.join("\n");
}

const xml = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;");

export function launchdPlist(spec: ServiceSpec): string {
  const label = launchdLabel(spec.role);
  const args = [...spec.command, ...serveArgs(spec)];
  const logDir = spec.scope === "system" ? "/Library/Logs" : `${spec.home}/Library/Logs`;
  const log = `${logDir}/${unitName(spec.role)}.log`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>${xml(label)}</string>
  <key>ProgramArguments</key>
  <array>
${args.map((a) => `    <string>${xml(a)}</string>`).join("\n")}
  </array>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ProcessType</key>
  <string>Background</string>
  <key>StandardOutPath</key>
  <string>${xml(log)}</string>
  <key>StandardErrorPath</key>
  <string>${xml(log)}</string>
</dict>
</plist>
`;
}

/** Where the service file goes, and its name for the service manager. */
export function serviceFile(
  platform: ServicePlatform,
  scope: ServiceScope,
  role: ServiceRole,
  home: string,
  xdgConfigHome?: string,
): string {
  if (platform === "darwin") {
    const dir = scope === "system" ? "/Library/LaunchDaemons" : `${home}/Library/LaunchAgents`;
    return `${dir}/${launchdLabel(role)}.plist`;
  }
  const dir =
    scope === "system" ? "/etc/systemd/system" : `${xdgConfigHome || `${home}/.config`}/systemd/user`;
  return `${dir}/${unitName(role)}.service`;
}

/** The service file's content for the platform. */
export function serviceFileContent(platform: ServicePlatform, spec: ServiceSpec): string {
  return platform === "darwin" ? launchdPlist(spec) : systemdUnit(spec);
}
