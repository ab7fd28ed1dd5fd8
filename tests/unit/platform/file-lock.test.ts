import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { tryLockFile } from "../../../src/platform/file-lock.ts";

const dir = mkdtempSync(join(tmpdir(), "dionysus-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const holdScript = (path: string) => `
  import { tryLockFile } from ${JSON.stringify(join(import.meta.dir, "../../../src/platform/file-lock.ts"))};
  const l = tryLockFile(${JSON.stringify(path)});
  console.log(l ? "locked" : "busy");
  await Bun.stdin.text();
`;

test("a lock held by another process refuses, and is free again once that process is killed", async () => {
  const path = join(dir, "a.lock");
  const child = Bun.spawn([process.execPath, "-e", holdScript(path)], { stdin: "pipe", stdout: "pipe" });
  const reader = child.stdout.getReader();
  const first = new TextDecoder().decode((await reader.read()).value);
  expect(first.trim()).toBe("locked");
  expect(tryLockFile(path)).toBeUndefined();
  child.kill(9);
  await child.exited;
  const mine = tryLockFile(path);
  expect(mine?.supported).toBe(true);
  mine!.release();
});

test("release lets the next taker in; a second release is harmless", () => {
  const path = join(dir, "b.lock");
  const a = tryLockFile(path)!;
  expect(a).toBeDefined();
  a.release();
  a.release();
  const b = tryLockFile(path);
  expect(b).toBeDefined();
  b!.release();
});
