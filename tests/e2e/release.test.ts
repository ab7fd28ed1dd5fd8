/**
 * What a self-hoster runs, from the compiled binary: `bun run build`'s checksum and
 * scripts/install.sh, and the container. No container engine can build or run images here (no
 * registry access, and podman's runtime is refused by this sandbox), so the container is tested by
 * checking that Dockerfile and compose.yaml agree with the binary (the env names its config reads,
 * the port, the health check), and by running the compiled binary with exactly the image's
 * command line and compose's environment against a real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { VpsConfig } from "../../src/core/config.ts";
import { VERSION } from "../../src/core/version.ts";
import { BUILD_ARGS, compiledBinary } from "../helpers/compiled.ts";
import { createPgDatabase, freePort, repoRoot, type TestDatabase, tempDir } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

const work = tempDir("dionysus-release-");
const binary = join(work.path, "dionysus");
const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};

beforeAll(() => {
  // The same two steps as `bun run build`, into a temporary dir instead of dist/: the compile (one
  // build per source tree, shared with the other tests of the compiled binary) and the checksum.
  expect(pkg.scripts.build).toBe(
    `bun ${BUILD_ARGS.join(" ")} --outfile dist/dionysus && bun scripts/checksum.ts dist/dionysus`,
  );
  copyFileSync(compiledBinary(), binary);
  chmodSync(binary, 0o755);
  const argv = [process.execPath, "scripts/checksum.ts", binary];
  const r = Bun.spawnSync(argv, { cwd: repoRoot, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${r.stderr.toString()}`);
}, 300_000);
afterAll(() => work.cleanup());

describe("scripts/install.sh", () => {
  const install = (args: string[], env: Record<string, string>) => {
    const r = Bun.spawnSync(["sh", join(repoRoot, "scripts/install.sh"), ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
  };

  test("the build's checksum is sha256sum's format, and install verifies it and installs to PREFIX/bin", () => {
    const sum = readFileSync(`${binary}.sha256`, "utf8");
    expect(sum).toMatch(/^[0-9a-f]{64} {2}dionysus\n$/);
    const check = Bun.spawnSync(["sha256sum", "-c", "dionysus.sha256"], { cwd: work.path, stdout: "pipe" });
    expect(check.stdout.toString()).toBe("dionysus: OK\n");

    const prefix = join(work.path, "prefix");
    const r = install([prefix], { HOME: work.path, DIONYSUS_BINARY: binary });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const installed = join(prefix, "bin", "dionysus");
    expect(r.stdout).toContain(`installed ${installed} (${VERSION})`);
    expect(r.stdout).toContain("is not on your PATH");
    expect(statSync(installed).mode & 0o777).toBe(0o755);
    const v = Bun.spawnSync([installed, "--version"], { stdout: "pipe" });
    expect(v.stdout.toString().trim()).toBe(VERSION);
  });

  test("without PREFIX it installs to ~/.local/bin", () => {
    const home = join(work.path, "home");
    const r = install([], { HOME: home, DIONYSUS_BINARY: binary });
    expect(r.code).toBe(0);
    expect(existsSync(join(home, ".local", "bin", "dionysus"))).toBe(true);
  });

  test("a binary that does not match its checksum, or has none, is not installed", () => {
    const tampered = join(work.path, "tampered");
    copyFileSync(binary, tampered);
    copyFileSync(`${binary}.sha256`, `${tampered}.sha256`);
    appendFileSync(tampered, "x");
    const prefix = join(work.path, "refused");
    const bad = install([prefix], { HOME: work.path, DIONYSUS_BINARY: tampered });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("checksum mismatch");
    expect(existsSync(join(prefix, "bin", "dionysus"))).toBe(false);

    rmSync(`${tampered}.sha256`);
    const none = install([prefix], { HOME: work.path, DIONYSUS_BINARY: tampered });
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("no checksum");
    writeFileSync(`${tampered}.sha256`, "not a checksum\n");
    expect(install([prefix], { HOME: work.path, DIONYSUS_BINARY: tampered }).stderr).toContain(
      "does not hold a SHA-256",
    );
    expect(install(["a", "b"], { HOME: work.path }).code).toBe(2);
  });
});

/** The Dockerfile's instructions of its last stage (the runtime image), continuation lines joined. */
function runtimeStage(text: string): Array<{ op: string; args: string }> {
  const joined = text.replace(/\\\n\s*/g, " ");
  const lines = joined
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"));
  const last = lines.map((l) => l.startsWith("FROM ")).lastIndexOf(true);
  return lines.slice(last).map((l) => {
    const sp = l.indexOf(" ");
    return { op: l.slice(0, sp).toUpperCase(), args: l.slice(sp + 1).trim() };
  });
}

/** `KEY=value KEY2=value2` of an ENV instruction. */
function envPairs(args: string): Record<string, string> {
  return Object.fromEntries([...args.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
}

function dotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** Compose's interpolation: `${VAR}`, `${VAR:-default}`, `${VAR:?error}`, and `$$`. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{(\w+)(?::([-?])([^}]*))?\}/g,
    (all, name?: string, op?: string, arg?: string) => {
      if (all === "$$") return "$";
      const v = vars[name!];
      if (op === "-") return v ? v : (arg ?? "");
      if (op === "?" && !v) throw new Error(`${name}: ${arg}`);
      return v ?? "";
    },
  );
}

interface ComposeService {
  image?: string;
  build?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  profiles?: string[];
  healthcheck?: { test: string[] };
  command?: string[];
  depends_on?: Record<string, { condition: string; required?: boolean }>;
}

describe("the container image and compose.yaml", () => {
  const dockerfile = runtimeStage(readFileSync(join(repoRoot, "Dockerfile"), "utf8"));
  const compose = Bun.YAML.parse(readFileSync(join(repoRoot, "compose.yaml"), "utf8")) as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
  };
  const example = dotenv(readFileSync(join(repoRoot, ".env.example"), "utf8"));
  const one = (op: string) => dockerfile.filter((i) => i.op === op);
  const imageEnv = Object.assign({}, ...one("ENV").map((i) => envPairs(i.args))) as Record<string, string>;
  const vps = compose.services.vps!;
  const json = (op: string) => JSON.parse(one(op)[0]!.args) as string[];

  /** The env names the binary's VPS config reads (see src/cli/env.ts). */
  const readByConfig = (name: string) =>
    ["DATABASE_URL", "OLLAMA_URL", "NEO4J_URL", "DIONYSUS_VPS_HOME"].includes(name) ||
    (name.startsWith("DIONYSUS_VPS_") && name.slice(13).toLowerCase() in VpsConfig.shape);

  test("the runtime stage: only the binary, on a slim base, as a non-root user, running vps serve", () => {
    expect(one("FROM")[0]!.args).toMatch(/-slim$/);
    const copies = one("COPY");
    expect(copies).toEqual([{ op: "COPY", args: "--from=build /src/dist/dionysus /usr/local/bin/dionysus" }]);
    const user = one("USER")[0]!.args;
    expect(user.split(":")[0]).not.toBe("0");
    expect(user).not.toStartWith("root");
    expect([...json("ENTRYPOINT"), ...json("CMD")]).toEqual(["dionysus", "vps", "serve"]);
  });

  test("every env name the image and compose set is one the binary reads; the ports agree", () => {
    const names = [...Object.keys(imageEnv), ...Object.keys(vps.environment ?? {})];
    expect(names.filter((n) => !readByConfig(n))).toEqual([]);
    const port = imageEnv.DIONYSUS_VPS_PORT!;
    expect(one("EXPOSE")[0]!.args).toBe(port);
    expect(vps.environment?.DIONYSUS_VPS_PORT).toBe(port);
    expect(vps.ports).toEqual([`\${DIONYSUS_PORT:-8000}:${port}`]);
    expect(imageEnv.DIONYSUS_VPS_HOME).toBe("/data");
    expect(vps.volumes).toEqual(["vpsdata:/data"]);
  });

  test("health checks, named volumes, pgvector, and the ollama and neo4j profiles", () => {
    expect(compose.services.postgres?.image).toBe("pgvector/pgvector:pg16");
    expect(compose.services.postgres?.healthcheck?.test.join(" ")).toContain("pg_isready");
    expect(vps.healthcheck?.test).toEqual([
      "CMD",
      ...JSON.parse(one("HEALTHCHECK")[0]!.args.split(" CMD ")[1]!),
    ]);
    expect(vps.depends_on?.postgres?.condition).toBe("service_healthy");
    for (const v of ["pgdata", "vpsdata", "ollama", "neo4j"]) expect(v in compose.volumes).toBe(true);
    expect(compose.services.ollama?.profiles).toEqual(["ollama"]);
    expect(compose.services.neo4j?.profiles).toEqual(["neo4j"]);
    const pull = interpolate(compose.services["ollama-pull"]!.command!.join(" "), example);
    expect(pull).toContain("ollama pull nomic-embed-text");
    expect(pull).toContain(`ollama pull ${example.DIONYSUS_VPS_OLLAMA_CHAT_MODEL}`);
    // With the profile's settings from .env.example, the VPS is pointed at that Ollama and those models.
    const withOllama = { ...example, OLLAMA_URL: "http://ollama:11434" };
    expect(interpolate(vps.environment!.OLLAMA_URL!, withOllama)).toBe("http://ollama:11434");
    expect(interpolate(vps.environment!.DIONYSUS_VPS_OLLAMA_MODEL!, withOllama)).toBe("nomic-embed-text");
  });

  test(".env.example defines every variable compose.yaml needs", () => {
    const text = readFileSync(join(repoRoot, "compose.yaml"), "utf8");
    // `$${...}` is an escaped dollar, for the container's shell.
    const needed = [...text.matchAll(/(?<!\$)\$\{(\w+)(:[-?])?/g)]
      .filter((m) => m[2] !== ":-")
      .map((m) => m[1]!);
    expect(needed.filter((n) => !(n in example))).toEqual([]);
  });

  describe("the image's command line against PostgreSQL", () => {
    let db: TestDatabase;
    let server: ReturnType<typeof Bun.spawn> | undefined;
    const data = join(work.path, "data");
    const port = String(freePort());

    beforeAll(async () => {
      db = await createPgDatabase();
    });
    afterAll(async () => {
      if (server && server.exitCode === null) server.kill("SIGKILL");
      await server?.exited;
      await db?.drop();
    });

    /** The image's ENV, then compose's environment interpolated with .env.example; the only
     * changes: the database host (compose's service name `postgres` is the test's server), the data
     * dir (the volume at /data) and the port (8000 may be taken on this machine). */
    function containerEnv(): Record<string, string> {
      const env: Record<string, string> = { ...imageEnv };
      for (const [k, v] of Object.entries(vps.environment ?? {})) env[k] = interpolate(v, example);
      expect(env.DATABASE_URL).toBe(
        `postgres://dionysus:${example.POSTGRES_PASSWORD}@postgres:5432/dionysus`,
      );
      return {
        ...env,
        DATABASE_URL: db.url,
        DIONYSUS_VPS_HOME: data,
        DIONYSUS_VPS_PORT: port,
        PATH: `${work.path}:/usr/bin:/bin`,
        HOME: work.path,
      };
    }

    test("vps serve starts on PostgreSQL, the HEALTHCHECK command passes, SIGTERM stops it cleanly", async () => {
      const env = containerEnv();
      server = Bun.spawn([...json("ENTRYPOINT"), ...json("CMD")], {
        cwd: work.path,
        env,
        stdout: "ignore",
        stderr: "pipe",
      });
      const health = () =>
        Bun.spawn(["dionysus", "vps", "health", "--json"], {
          cwd: work.path,
          env,
          stdout: "pipe",
          stderr: "pipe",
        });
      let ok = false;
      const deadline = Date.now() + 60_000;
      while (!ok && Date.now() < deadline && server.exitCode === null) {
        const h = health();
        ok = (await h.exited) === 0;
        if (!ok) await Bun.sleep(200);
      }
      expect(ok).toBe(true);
      const body = JSON.parse(await new Response(health().stdout).text()) as Record<string, unknown>;
      expect(body).toMatchObject({ status: "ok", database: "ok", version: VERSION });
      // PostgreSQL, not the embedded database: no pgdata in the data dir.
      expect(existsSync(join(data, "pgdata"))).toBe(false);
      // The page at / is served (sign-in form) by the same binary.
      const page = await fetch(`http://127.0.0.1:${port}/`);
      expect(await page.text()).toContain('action="/signin"');
      server.kill("SIGTERM");
      expect(await server.exited).toBe(0);
    });
  });
});
