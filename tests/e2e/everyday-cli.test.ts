/**
 * The everyday commands as real CLI processes: `config show` / `config set` (sources, masking,
 * refusals), start-up stopped by an unknown config key or a bad value (naming the key), and
 * `completion` (the bash script is run by a real bash and completes real subcommands and options).
 * The log level's filtering is checked on the VPS's logger itself.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jsonLogger } from "../../src/vps/log.ts";
import { cleanEnv, runCli, scratch } from "../helpers/harness.ts";

setDefaultTimeout(60_000);
const tmp = scratch();
afterAll(() => tmp.cleanup());
const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...opts, baseEnv: cleanEnv() });
const ok = (r: { code: number; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
};

interface Shown {
  file: string;
  settings: { key: string; value: unknown; source: string }[];
}

describe("dionysus config", () => {
  test("set writes the file after checking; show tells each setting's source and masks secrets", async () => {
    const dir = tmp.dir();
    ok(await cli(["config", "set", "port", "9123", "--data-dir", dir]));
    ok(
      await cli([
        "config",
        "set",
        "allowed_origins",
        "http://a.example, http://b.example",
        "--data-dir",
        dir,
      ]),
    );
    const bad = await cli(["config", "set", "port", "ninety", "--data-dir", dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith("dionysus: port: ");
    const unknown = await cli(["config", "set", "colour", "blue", "--data-dir", dir]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown config key "colour"');
    expect(JSON.parse(readFileSync(join(dir, "config.json"), "utf8"))).toEqual({
      port: 9123,
      allowed_origins: ["http://a.example", "http://b.example"],
    });

    const r = await cli(["config", "show", "--json", "--data-dir", dir], {
      env: { DIONYSUS_SYNC_INTERVAL_S: "7" },
    });
    ok(r);
    const shown = JSON.parse(r.stdout) as Shown;
    const get = (k: string) => shown.settings.find((s) => s.key === k);
    expect(shown.file).toBe(join(dir, "config.json"));
    expect(get("port")).toEqual({ key: "port", value: 9123, source: "file" });
    expect(get("sync_interval_s")).toEqual({ key: "sync_interval_s", value: 7, source: "env" });
    expect(get("cache_ttl_s")).toEqual({ key: "cache_ttl_s", value: 300, source: "default" });

    const vdir = tmp.dir();
    ok(await cli(["config", "set", "neo4j_password", "hunter2-secret", "--vps", "--data-dir", vdir]));
    ok(
      await cli([
        "config",
        "set",
        "database_url",
        "postgres://app:pg-secret@db/x",
        "--vps",
        "--data-dir",
        vdir,
      ]),
    );
    expect(statSync(join(vdir, "config.json")).mode & 0o777).toBe(0o600);
    const v = await cli(["config", "show", "--vps", "--data-dir", vdir], {
      env: { DIONYSUS_LOG_LEVEL: "warn" },
    });
    ok(v);
    expect(v.stdout).not.toContain("hunter2-secret");
    expect(v.stdout).not.toContain("pg-secret");
    expect(v.stdout).toContain('"postgres://app:****@db/x"  (file)');
    expect(v.stdout).toMatch(/log_level\s+"warn"\s+\(env\)/);
  });

  test("an unknown key or a bad value stops start-up with a message naming the key", async () => {
    const dir = tmp.dir();
    writeFileSync(join(dir, "config.json"), JSON.stringify({ prot: 9000 }));
    const r = await cli(["serve", "--port", "0", "--data-dir", dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`dionysus: unknown config key "prot" in ${join(dir, "config.json")}\n`);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ queue_retention_s: -5 }));
    const neg = await cli(["serve", "--port", "0", "--data-dir", dir]);
    expect(neg.code).toBe(2);
    expect(neg.stderr).toStartWith("dionysus: invalid configuration: queue_retention_s: ");
    const level = await cli(["vps", "serve", "--port", "0", "--log-level", "loud", "--data-dir", tmp.dir()]);
    expect(level.code).toBe(2);
    expect(level.stderr).toStartWith("dionysus: invalid configuration: log_level: ");
  });
});

describe("log level", () => {
  test("the VPS logger writes entries at the level or above; an entry without one is info", () => {
    const lines: string[] = [];
    const log = jsonLogger((l) => lines.push(l), "warn");
    log({ msg: "request" });
    log({ level: "debug", msg: "pruned" });
    log({ level: "warn", msg: "slow" });
    log({ level: "error", msg: "failed" });
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(["slow", "failed"]);
    const all: string[] = [];
    jsonLogger((l) => all.push(l), "debug")({ level: "debug", msg: "pruned" });
    expect(all).toHaveLength(1);
  });
});

describe("dionysus completion", () => {
  test("bash completes subcommands and options; zsh and fish scripts are made; others refused", async () => {
    const r = await cli(["completion", "bash"]);
    ok(r);
    const script = join(tmp.dir(), "c.bash");
    writeFileSync(script, r.stdout);
    const complete = async (...words: string[]) => {
      const p = Bun.spawn(
        [
          "bash",
          "-c",
          `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _dionysus; echo "\${COMPREPLY[*]}"`,
        ],
        { stdout: "pipe", stderr: "pipe" },
      );
      const out = await new Response(p.stdout).text();
      expect(await p.exited).toBe(0);
      return out.trim().split(" ");
    };
    expect(await complete("dionysus", "ex")).toEqual(["export"]);
    expect(await complete("dionysus", "vps", "key", "r")).toEqual(["revoke"]);
    expect(await complete("dionysus", "import", "--")).toEqual(["--json", "--progress", "--help"]);
    expect(await complete("dionysus", "sync", "re")).toEqual(["retry"]);

    const zsh = await cli(["completion", "zsh"]);
    ok(zsh);
    expect(zsh.stdout).toContain("bashcompinit");
    const fish = await cli(["completion", "fish"]);
    ok(fish);
    expect(fish.stdout).toContain("complete -c dionysus -n '__fish_use_subcommand' -a 'backup'");
    const other = await cli(["completion", "tcsh"]);
    expect(other.code).toBe(2);
  });
});
