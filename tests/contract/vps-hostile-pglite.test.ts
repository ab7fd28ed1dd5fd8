import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createVpsDatabase } from "../../src/vps/db/database.ts";
import { vpsHostileContract } from "./vps-hostile.contract.ts";

vpsHostileContract("PGlite", async () => {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-pglite-"));
  const vdb = await createVpsDatabase({ data_dir: dir });
  return {
    vdb,
    async close() {
      await vdb.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
