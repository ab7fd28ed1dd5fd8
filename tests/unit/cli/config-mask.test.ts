/** `config show` and `config set` print settings with their secrets masked. */
import { expect, test } from "bun:test";
import { mask } from "../../../src/cli/commands/config.ts";

test("secret keys are masked whole; other values are shown", () => {
  expect(mask("neo4j_password", "hunter2")).toBe("****");
  expect(mask("port", 8000)).toBe(8000);
  expect(mask("neo4j_password", undefined)).toBeUndefined();
});

test("a URL's password is masked wherever it sits: user part, query parameter", () => {
  expect(mask("database_url", "postgres://app:hunter2@db/x")).toBe("postgres://app:****@db/x");
  const q = String(mask("database_url", "postgres://db/x?user=app&password=hunter2&sslmode=require"));
  expect(q).not.toContain("hunter2");
  expect(q).toContain("sslmode=require");
  expect(q).toContain("user=app");
  expect(mask("ollama_url", "http://127.0.0.1:11434")).toBe("http://127.0.0.1:11434/");
});

test("a URL setting that does not parse is masked whole (its secret's place is unknown)", () => {
  expect(mask("database_url", "host=db user=app password=hunter2")).toBe("****");
});
