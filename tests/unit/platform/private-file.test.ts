import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPrivateFile } from "../../../src/platform/private-file.ts";

const dir = mkdtempSync(join(tmpdir(), "dionysus-private-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("a private file is owner-only from its creation, even with a permissive umask, and a writer keeps that", async () => {
  const before = process.umask(0);
  try {
    const p = join(dir, "backup.partial");
    createPrivateFile(p);
    expect(statSync(p).mode & 0o777).toBe(0o600);
    const w = Bun.file(p).writer();
    w.write("every user's data");
    await w.end();
    expect(statSync(p).mode & 0o777).toBe(0o600);
    expect(await Bun.file(p).text()).toBe("every user's data");
    // Unlike a plain write, which the umask leaves world-readable.
    const plain = join(dir, "plain");
    writeFileSync(plain, "x");
    expect(statSync(plain).mode & 0o077).not.toBe(0);
  } finally {
    process.umask(before);
  }
});

test("a path that exists already (a file or a planted link) is refused, never followed", () => {
  const target = join(dir, "target");
  writeFileSync(target, "keep");
  const link = join(dir, "link");
  symlinkSync(target, link);
  expect(() => createPrivateFile(link)).toThrow();
  expect(() => createPrivateFile(target)).toThrow();
  expect(readFileSync(target, "utf8")).toBe("keep");
});
