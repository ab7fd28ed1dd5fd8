/**
 * `dionysus service` as a real process, in a temporary HOME, with a stand-in `systemctl` first on
 * PATH that records its arguments (no systemd runs in this container, and the test must not touch
 * the machine's services). The unit it writes starts this very program.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bun, cleanEnv, cliEntry, runCli, tempDir } from "../helpers/harness.ts";

const home = tempDir("dionysus-service-home-");
afterAll(() => home.cleanup());

const bin = join(home.path, "bin");
const log = join(home.path, "systemctl.log");
mkdirSync(bin);
writeFileSync(
  join(bin, "systemctl"),
  `#!/bin/sh\necho "$*" >> "${log}"\ncase "$*" in *is-active*) if [ -f "${home.path}/.config/systemd/user/dionysus.service" ]; then echo active; else echo inactive; exit 3; fi;; esac\nexit 0\n`,
);
chmodSync(join(bin, "systemctl"), 0o755);

const env = cleanEnv({
  HOME: home.path,
  PATH: `${bin}:${process.env.PATH}`,
  XDG_CONFIG_HOME: "",
  XDG_DATA_HOME: "",
});
const cli = (args: string[]) => runCli(args, { baseEnv: env });

describe.skipIf(process.platform !== "linux")("dionysus service (Linux, stand-in systemctl)", () => {
  test("install writes a user unit that runs this program, enables it; status and uninstall follow", async () => {
    const r = await cli(["service", "install", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout) as { file: string; installed: boolean; state: string };
    const file = join(home.path, ".config/systemd/user/dionysus.service");
    expect(report).toMatchObject({ file, installed: true, state: "active" });
    expect(readFileSync(file, "utf8")).toContain(
      `ExecStart=${bun} ${cliEntry} serve --data-dir ${home.path}/.local/share/dionysus\n`,
    );
    expect(readFileSync(log, "utf8").trim().split("\n")).toEqual([
      "--user daemon-reload",
      "--user enable --now dionysus.service",
      "--user is-active dionysus.service",
    ]);

    const status = await cli(["service", "status"]);
    expect(status.stdout).toBe(`dionysus.service (edge agent, user): ${file}; state: active\n`);

    const gone = await cli(["service", "uninstall"]);
    expect(gone.code).toBe(0);
    expect(existsSync(file)).toBe(false);
    const again = await cli(["service", "uninstall"]);
    expect(again.code).toBe(3);
    expect(again.stderr).toBe(`dionysus: the service is not installed (no ${file})\n`);
  });

  test("--data-dir goes into the unit; a bad subcommand is a usage error", async () => {
    const dir = join(home.path, "my data");
    const r = await cli(["--data-dir", dir, "service", "install", "--vps", "--json"]);
    expect(r.code).toBe(0);
    const unit = readFileSync(join(home.path, ".config/systemd/user/dionysus-vps.service"), "utf8");
    expect(unit).toContain(`vps serve --data-dir "${dir}"\n`);
    const bad = await cli(["service", "start"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith("dionysus: unknown command 'start'");
  });
});
