/**
 * `dionysus open`'s browser command: `$BROWSER` wins (its first entry; `%s` is the URL, else the
 * URL is appended), else the platform's opener.
 */
import { expect, test } from "bun:test";
import { delimiter } from "node:path";
import { browserCommand } from "../../../src/cli/commands/open.ts";

const url = "http://127.0.0.1:8080/session?ticket=abc&next=/";

test("BROWSER: the URL is appended, or put where %s stands; only the first entry of a list is run", () => {
  expect(browserCommand(url, { BROWSER: "firefox" })).toEqual(["firefox", url]);
  expect(browserCommand(url, { BROWSER: "  chromium --new-window  " })).toEqual([
    "chromium",
    "--new-window",
    url,
  ]);
  expect(browserCommand(url, { BROWSER: "w3m -o url=%s" })).toEqual(["w3m", "-o", `url=${url}`]);
  expect(browserCommand(url, { BROWSER: `${delimiter}lynx${delimiter}firefox` })).toEqual(["lynx", url]);
});

test("without BROWSER (or an empty one) the platform's opener, when there is one", () => {
  for (const env of [{}, { BROWSER: "" }, { BROWSER: delimiter }]) {
    const argv = browserCommand(url, env);
    if (process.platform === "linux" && !Bun.which("xdg-open")) expect(argv).toBeUndefined();
    else expect(argv?.at(-1)).toBe(url);
  }
});
