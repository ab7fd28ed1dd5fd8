/**
 * The edge daemon's status page in a real browser (Debian's chromium through playwright-core)
 * against a real `dionysus serve`: the way in through the session cookie, counts and recent
 * memories, search with filters, retrying a failed sync item, and the CSRF refusals.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import {
  hasChromium,
  launchChromium,
  NO_CHROMIUM,
  SCREENSHOTS,
  type TestBrowser,
} from "../helpers/browser.ts";
import { cleanEnv, edgeAuth, runCli, type ServeHandle, scratch, serve } from "../helpers/harness.ts";

setDefaultTimeout(60_000);

if (!hasChromium) console.warn(`edge-status-page: ${NO_CHROMIUM}`);

describe.skipIf(!hasChromium)("edge status page (chromium)", () => {
  const tmp = scratch();
  let dir: string;
  let d: ServeHandle;
  let b: TestBrowser;

  const ingest = async (content: string, tags: string[], kind = "episodic") => {
    const r = await fetch(`${d.url}/v1/memories`, {
      method: "POST",
      headers: edgeAuth(dir, { "Content-Type": "application/json" }),
      body: JSON.stringify({ content, tags, kind }),
    });
    expect(r.status).toBe(201);
  };

  beforeAll(async () => {
    dir = tmp.dir();
    d = tmp.track(await serve(dir));
    await ingest("Coffee with Ana at the museum of modern art", ["ana", "art"]);
    await ingest("Ana starts her new job in May", ["ana", "work"]);
    await ingest("I prefer tea over coffee in the evening", ["prefs"], "identity");
    b = await launchChromium();
  });
  afterAll(async () => {
    await b?.close();
    await tmp.cleanup();
  });

  test("dionysus open prints the page's URL; a browser opening it gets a session and sees the count and the recent memories", async () => {
    const open = await runCli(["open", "--print", "--data-dir", dir], { baseEnv: cleanEnv() });
    expect(open.stderr).toBe("");
    expect(open.stdout).toBe(`${d.url}/\n`);
    const page = await b.context.newPage();
    const res = await page.goto(open.stdout.trim());
    expect(res?.status()).toBe(200);
    expect(new URL(page.url()).pathname).toBe("/");
    expect(await page.getByTestId("count").textContent()).toBe("3");
    const items = await page.getByTestId("memories").locator("li").allTextContents();
    expect(items).toHaveLength(3);
    expect(items[0]).toContain("I prefer tea over coffee");
    expect(await page.getByTestId("queue").locator('[data-state="queued"]').textContent()).toBe("3");
    // The stylesheet comes from the binary and is applied (no CDN; CSP forbids other sources).
    const font = await page.locator("body").evaluate((el) => {
      const view = el.ownerDocument.defaultView as unknown as {
        getComputedStyle(e: unknown): { fontFamily: string };
      };
      return view.getComputedStyle(el).fontFamily;
    });
    expect(font).toContain("system-ui");
    await page.screenshot({ path: join(SCREENSHOTS, "edge-status.png"), fullPage: true });
    await page.close();
  });

  test("search returns the hit, and the kind and tag filters narrow it", async () => {
    const page = await b.context.newPage();
    await page.goto(`${d.url}/`);
    await page.getByLabel("Search").fill("museum");
    await Promise.all([page.waitForURL(/q=museum/), page.getByRole("button", { name: "Search" }).click()]);
    const hits = await page.getByTestId("memories").locator("li").allTextContents();
    expect(hits).toHaveLength(1);
    expect(hits[0]).toContain("museum");
    await page.screenshot({ path: join(SCREENSHOTS, "edge-search.png"), fullPage: true });

    await page.getByLabel("Search").fill("coffee");
    await page.getByLabel("Kind").selectOption("identity");
    await Promise.all([
      page.waitForURL(/kind=identity/),
      page.getByRole("button", { name: "Search" }).click(),
    ]);
    const identity = await page.getByTestId("memories").locator("li").allTextContents();
    expect(identity).toHaveLength(1);
    expect(identity[0]).toContain("tea over coffee");

    await page.goto(`${d.url}/?tag=work`);
    const tagged = await page.getByTestId("memories").locator("li").allTextContents();
    expect(tagged).toHaveLength(1);
    expect(tagged[0]).toContain("new job");
    await page.close();
  });

  test("the retry button requeues a failed item", async () => {
    // No VPS runs here to refuse a write, so one queue row is marked failed in the database, as
    // the engine does after a permanent refusal.
    const db = new Database(join(dir, "edge.db"));
    try {
      db.run(
        "UPDATE sync_queue SET status = 'failed', last_error = 'invalid_input: refused' WHERE mutation_id = 2",
      );
    } finally {
      db.close();
    }
    const page = await b.context.newPage();
    await page.goto(`${d.url}/`);
    expect(await page.getByTestId("failed").textContent()).toContain("invalid_input: refused");
    expect(await page.getByTestId("queue").locator('[data-state="failed"]').textContent()).toBe("1");
    await Promise.all([
      page.waitForURL(/retried=1/),
      page.getByRole("button", { name: "Retry selected" }).click(),
    ]);
    expect(await page.getByRole("status").textContent()).toContain("Requeued 1 failed item");
    expect(await page.getByTestId("queue").locator('[data-state="failed"]').textContent()).toBe("0");
    expect(await page.getByTestId("queue").locator('[data-state="queued"]').textContent()).toBe("3");
    await page.screenshot({ path: join(SCREENSHOTS, "edge-retried.png"), fullPage: true });
    await page.close();

    const check = new Database(join(dir, "edge.db"), { readonly: true });
    try {
      expect(check.query("SELECT status FROM sync_queue WHERE mutation_id = 2").get()).toEqual({
        status: "queued",
      });
    } finally {
      check.close();
    }
  });

  test("the retry form refuses a post without the page's Origin, or from another site", async () => {
    const cookies = await b.context.cookies(d.url);
    const session = cookies.find((c) => c.name === "dionysus_session");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Strict");
    const post = (headers: Record<string, string>) =>
      fetch(`${d.url}/sync/retry`, {
        method: "POST",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
        body: "id=1",
      });
    const cookie = `dionysus_session=${session!.value}`;
    expect((await post({ Cookie: cookie })).status).toBe(403);
    expect((await post({ Cookie: cookie, Origin: "http://evil.example" })).status).toBe(403);
    expect((await post({ Origin: d.url })).status).toBe(401);
    expect((await post({ Cookie: cookie, Origin: d.url })).status).toBe(303);
    const nasty = await fetch(`${d.url}/sync/retry`, {
      method: "POST",
      headers: { Cookie: cookie, Origin: d.url, "Content-Type": "application/x-www-form-urlencoded" },
      body: "id=1e400",
    });
    expect(nasty.status).toBe(400);
    expect(nasty.headers.get("content-type")).toContain("application/problem+json");
  });

  test("dionysus open without a running daemon says so and exits 5", async () => {
    const r = await runCli(["open", "--print", "--data-dir", tmp.dir()], { baseEnv: cleanEnv() });
    expect(r.code).toBe(5);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("no daemon runs");
  });

  test("without a cookie, / is refused to a foreign Host and a cross-site navigation", async () => {
    const foreign = await fetch(`${d.url}/`, { headers: { Host: "evil.example" }, redirect: "manual" });
    expect(foreign.status).toBe(403);
    const cross = await fetch(`${d.url}/session?next=/`, {
      headers: { "Sec-Fetch-Site": "cross-site" },
      redirect: "manual",
    });
    expect(cross.status).toBe(403);
    expect(cross.headers.get("set-cookie")).toBeNull();
  });
});
