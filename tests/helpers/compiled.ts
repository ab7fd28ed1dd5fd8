/**
 * The compiled `dionysus` binary for the tests that run it (release, vps-compiled, mcp-stdio),
 * built once per source tree instead of once per test file: `bun build --compile` with exactly the
 * flags of `bun run build` (package.json; tests/e2e/release.test.ts checks they match), into a
 * cache under the temp dir keyed on a hash of the sources, the lockfile and the Bun version. A
 * changed source file gives a new key, so a test never runs a stale binary.
 *
 * Concurrent runs (parallel test files, other checkouts) each build into a file of their own and
 * rename it into place; the rename is atomic, so a reader sees a whole binary or none.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { repoRoot } from "./harness.ts";

/** `bun run build`'s compile step, without its `--outfile`. */
export const BUILD_ARGS = ["build", "--compile", "--minify", "--sourcemap", "src/cli/main.ts"] as const;

const CACHE = join(tmpdir(), "dionysus-test-binary");
/** Cached binaries of other source trees older than this are removed. */
const STALE_MS = 24 * 3600_000;

/** Every file under `dir` (recursively), sorted. */
function files(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...files(p));
    else if (e.isFile()) out.push(p);
  }
  return out.sort();
}

/** A hash of what the binary is built from. */
export function sourceKey(): string {
  const h = createHash("sha256");
  h.update(`${Bun.version} ${Bun.revision} ${BUILD_ARGS.join(" ")}\n`);
  const inputs = [
    ...files(join(repoRoot, "src")),
    ...["package.json", "bun.lock", "tsconfig.json", "bunfig.toml"]
      .map((f) => join(repoRoot, f))
      .filter((f) => existsSync(f)),
  ];
  for (const f of inputs) {
    h.update(`${relative(repoRoot, f)}\n`);
    h.update(readFileSync(f));
  }
  return h.digest("hex").slice(0, 24);
}

/** The path of the compiled binary of the current sources; builds it unless it is cached. */
export function compiledBinary(): string {
  const dir = join(CACHE, sourceKey());
  const bin = join(dir, "dionysus");
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `dionysus.${process.pid}.${Date.now()}.tmp`);
  const r = Bun.spawnSync([process.execPath, ...BUILD_ARGS, "--outfile", tmp], {
    cwd: repoRoot,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) {
    rmSync(tmp, { force: true });
    rmSync(`${tmp}.map`, { force: true });
    throw new Error(`bun ${BUILD_ARGS.join(" ")} failed: ${r.stderr.toString()}`);
  }
  // `--sourcemap` writes the map beside the output; it goes along with the binary.
  if (existsSync(`${tmp}.map`)) renameSync(`${tmp}.map`, `${bin}.map`);
  renameSync(tmp, bin);
  pruneStale(dir);
  return bin;
}

function pruneStale(keep: string): void {
  const now = Date.now();
  for (const e of readdirSync(CACHE)) {
    const p = join(CACHE, e);
    if (p === keep) continue;
    try {
      if (now - statSync(p).mtimeMs > STALE_MS) rmSync(p, { recursive: true, force: true });
    } catch {
      // another run removed it first
    }
  }
}
