/**
 * `service install|uninstall|status` without touching the real service manager: a temporary
 * HOME, and a recording runner in place of systemctl/launchctl (no systemd or launchd runs in
 * this container). Checks what is written where, and what the manager is told, in order.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DionysusError, exitCodeFor } from "../../../src/core/errors.ts";
import {
  installService,
  type RunResult,
  type ServiceEnv,
  serviceStatus,
  supportedPlatform,
  uninstallService,
} from "../../../src/platform/service/manager.ts";

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) rmSync(h, { recursive: true, force: true });
});

function recorder(platform: string, answer: (argv: string[]) => Partial<RunResult> = () => ({})) {
  const home = mkdtempSync(join(tmpdir(), "dionysus-home-"));
  homes.push(home);
  const calls: string[] = [];
  const env: ServiceEnv = {
    platform,
    home,
    uid: 501,
    run: async (argv) => {
      calls.push(argv.join(" "));
      return { code: 0, stdout: "", stderr: "", ...answer(argv) };
    },
  };
  return { env, calls, home };
}

const spec = (home: string, role: "edge" | "vps" = "edge") => ({
  role,
  scope: "user" as const,
  command: ["/opt/dionysus/bin/dionysus"],
  dataDir: join(home, "data"),
  home,
});

describe("systemd (Linux)", () => {
  test("install writes the user unit, reloads and enables it; status asks is-active; uninstall undoes it", async () => {
    const { env, calls, home } = recorder("linux", (argv) =>
      argv.includes("is-active") ? { stdout: "active\n" } : {},
    );
    const report = await installService(env, spec(home));
    const file = join(home, ".config/systemd/user/dionysus.service");
    expect(report).toEqual({
      platform: "linux",
      role: "edge",
      scope: "user",
      name: "dionysus.service",
      file,
      installed: true,
      state: "active",
    });
    expect(readFileSync(file, "utf8")).toContain(
      `ExecStart=/opt/dionysus/bin/dionysus serve --data-dir ${home}/data`,
    );
    expect(calls).toEqual([
      "systemctl --user daemon-reload",
      "systemctl --user enable --now dionysus.service",
      "systemctl --user is-active dionysus.service",
    ]);

    calls.length = 0;
    const removed = await uninstallService(env, "edge", "user");
    expect(removed.installed).toBe(false);
    expect(existsSync(file)).toBe(false);
    expect(calls.slice(0, 2)).toEqual([
      "systemctl --user disable --now dionysus.service",
      "systemctl --user daemon-reload",
    ]);
  });

  test("a system VPS unit goes to /etc/systemd/system and uses plain systemctl", async () => {
    const { env, calls } = recorder("linux", () => ({ code: 3, stdout: "inactive\n" }));
    const status = await serviceStatus(env, "vps", "system");
    expect(status.file).toBe("/etc/systemd/system/dionysus-vps.service");
    expect(status.state).toBe("inactive");
    expect(calls).toEqual(["systemctl is-active dionysus-vps.service"]);
  });

  test("systemctl failing stops install with one line naming the command", async () => {
    const { env, home } = recorder("linux", () => ({
      code: 1,
      stderr: "Failed to connect to bus: No medium found\n",
    }));
    const err = await installService(env, spec(home)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DionysusError);
    expect((err as DionysusError).message).toBe(
      "systemctl --user daemon-reload failed (exit 1): Failed to connect to bus: No medium found",
    );
  });

  test("uninstall of a service that is not installed: not_found, nothing run", async () => {
    const { env, calls } = recorder("linux");
    const err = (await uninstallService(env, "edge", "user").catch((e: unknown) => e)) as DionysusError;
    expect(err.code).toBe("not_found");
    expect(calls).toEqual([]);
  });
});

describe("launchd (macOS)", () => {
  test("install writes the agent plist and bootstraps it in the user's GUI domain", async () => {
    const { env, calls, home } = recorder("darwin", (argv) =>
      argv[1] === "print" ? { stdout: "gui/501/dev.dionysus.vps = {\n\tstate = running\n}\n" } : {},
    );
    const report = await installService(env, spec(home, "vps"));
    const file = join(home, "Library/LaunchAgents/dev.dionysus.vps.plist");
    expect(report.file).toBe(file);
    expect(report.state).toBe("running");
    expect(readFileSync(file, "utf8")).toContain("<string>vps</string>");
    expect(calls).toEqual([
      "launchctl bootout gui/501/dev.dionysus.vps",
      `launchctl bootstrap gui/501 ${file}`,
      "launchctl print gui/501/dev.dionysus.vps",
    ]);
  });
});

describe("other platforms", () => {
  test("Windows and others are refused as a usage error (exit 2), naming the alternative", async () => {
    for (const platform of ["win32", "freebsd"]) {
      const { env, home, calls } = recorder(platform);
      const err = (await installService(env, spec(home)).catch((e: unknown) => e)) as DionysusError;
      expect(err).toBeInstanceOf(DionysusError);
      expect(exitCodeFor(err)).toBe(2);
      expect(err.message).toContain(platform === "win32" ? "Windows" : "freebsd");
      expect(calls).toEqual([]);
      expect(existsSync(join(home, ".config"))).toBe(false);
    }
    expect(supportedPlatform("linux")).toBe("linux");
  });
});
