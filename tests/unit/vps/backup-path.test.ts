/** `vps backup --out` to a path that cannot be written: one plain error, before the database is
 * read, and nothing left beside it. */
import { expect, test } from "bun:test";
import { DionysusError } from "../../../src/core/errors.ts";
import { backupVps } from "../../../src/vps/admin/backup.ts";
import type { VpsDatabase } from "../../../src/vps/db/database.ts";

test("a backup into a missing directory is refused as unavailable, naming the path, without touching the database", async () => {
  const untouched = new Proxy({ kind: "pglite" } as VpsDatabase, {
    get(target, key) {
      if (key === "kind" || key === "then") return Reflect.get(target, key);
      throw new Error(`the database was read (${String(key)})`);
    },
  });
  const err = await backupVps(untouched, undefined, "/nonexistent-dir/backup").catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DionysusError);
  expect((err as DionysusError).code).toBe("unavailable");
  expect((err as DionysusError).message).toContain("/nonexistent-dir/backup.partial-");
});
