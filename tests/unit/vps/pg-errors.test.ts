/** Which PostgreSQL failures the VPS answers 503 with a reason: real errors from a real server. */
import { describe, expect, test } from "bun:test";
import { Client } from "pg";
import { isDionysusError } from "../../../src/core/errors.ts";
import { asDatabaseUnavailable, databaseUnavailableReason } from "../../../src/vps/db/pg-errors.ts";
import { freePort } from "../../helpers/harness.ts";

const url = process.env.TEST_DATABASE_URL;

/** The error PostgreSQL itself raises for `sqlstate`. */
async function raised(sqlstate: string): Promise<unknown> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DO $$ BEGIN RAISE EXCEPTION 'test' USING ERRCODE = '${sqlstate}'; END $$`);
    throw new Error("no error raised");
  } catch (err) {
    return err;
  } finally {
    await c.end();
  }
}

describe.skipIf(!url)("PostgreSQL failures as 503s", () => {
  test.each([
    ["53100", "disk is full"],
    ["53200", "out of memory"],
    ["53300", "no free connection"],
    ["57P01", "shutting down"],
    ["57P03", "starting up"],
    ["08006", "cannot be reached"],
  ])("SQLSTATE %s is unavailable: %s", async (code, words) => {
    const mapped = asDatabaseUnavailable(await raised(code));
    expect(isDionysusError(mapped) && mapped.code).toBe("unavailable");
    expect((mapped as Error).message).toContain(words);
  });

  test("a constraint violation or a syntax error stays what it is (a bug or a conflict, not an outage)", async () => {
    for (const code of ["23505", "42601", "22P02"]) {
      const err = await raised(code);
      expect(databaseUnavailableReason(err)).toBeUndefined();
      expect(asDatabaseUnavailable(err)).toBe(err);
    }
  });

  test("a connection refused (nothing listening) is unavailable", async () => {
    const c = new Client({ host: "127.0.0.1", port: freePort(), user: "x", database: "x" });
    const err = await c.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(databaseUnavailableReason(err)).toContain("cannot be reached");
  });
});
