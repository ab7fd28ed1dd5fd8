import { describe, test } from "bun:test";
import { createVpsDatabase } from "../../src/vps/db/database.ts";
import { createTestDatabase, TEST_DATABASE_URL } from "../helpers/harness.ts";
import { vpsHostileContract } from "./vps-hostile.contract.ts";

if (TEST_DATABASE_URL) {
  vpsHostileContract("PostgreSQL", async () => {
    const tdb = await createTestDatabase();
    const vdb = await createVpsDatabase({ database_url: tdb.url, data_dir: "/nonexistent" });
    return {
      vdb,
      async close() {
        await vdb.close();
        await tdb.drop();
      },
    };
  });
} else {
  describe("VPS hostile writes: PostgreSQL", () => {
    test.skip("needs TEST_DATABASE_URL (scripts/test.sh sets it)", () => {});
  });
}
