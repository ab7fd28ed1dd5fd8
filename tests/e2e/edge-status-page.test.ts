/**
 * The edge daemon's status page in a real browser (Debian's chromium through playwright-core)
 * against a real `dionysus serve`: the way in (`dionysus open` with a ticket, or the API token
 * pasted into the sign-in page), counts and recent memories, search with filters, retrying a
 * failed sync item, and the CSRF refusals. `dionysus open` runs a stand-in browser named by
 * `BROWSER` (a script that reports the URL it was given), which chromium then opens.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  hasChromium,
  launchChromium,
  NO_CHROMIUM,
  SCREENSHOTS,
  type TestBrowser,
} from "../helpers/browser.ts";
import {
  bun,
  cleanEnv,
  edgeAuth,
  edgeToken,
  runCli,
  type ServeHandle,
  scratch,
  serve,
} from "../helpers/harness.ts";

/**
 * A stand-in for the user's browser: `BROWSER` runs a script that POSTs the URL it was given to
 * a server of this test; `opened()` resolves with the next URL (no sleeping, no polling).
 */
function fakeBrowser(dir: string) {
  const waiting: Array<(url: string) => void> = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = await req.text();
      waiting.shift()?.(url);
      return new Response(null, { status: 204 });
    },
  });
  const script = join(dir, "fake-browser.ts");
  writeFileSync(
    script,
    `await fetch(${JSON.stringify(`http://127.0.0.1:${server.port}/`)}, { method: "POST", body: process.argv[2] });\n`,
  );
  return {
    env: { BROWSER: `${bun} ${script}` },
    opened: () => new Promise<string>((resolve) => waiting.push(resolve)),
    stop: () => server.stop(true),
  };
}

setDefaultTimeout(60_000);

if (!hasChromium) console.warn(`edge-status-page: ${NO_CHROMIUM}`);

describe.skipIf(!hasChromium)("edge status page (chromium)", () => {
  const tmp = scratch();
  let dir: string;
  let d: ServeHandle;
  let b: TestBrowser;
  let browser: ReturnType<typeof fakeBrowser>;

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
    browser = fakeBrowser(tmp.dir());
  });
  afterAll(async () => {
    browser?.stop();
    await b?.close();
    await tmp.cleanup();
  });

  test("dionysus open prints the page's URL and opens the browser with a ticket: chromium lands on the page signed in", async () => {
    const opened = browser.opened();
    const open = await runCli(["open", "--data-dir", dir], { baseEnv: cleanEnv(browser.env) });
    expect(open.stderr).toBe("");
    expect(open.code).toBe(0);
    expect(open.stdout).toBe(`${d.url}/\n`);
    const url = await opened;
    expect(url).toMatch(new RegExp(`^${d.url}/session\\?ticket=[A-Za-z0-9_-]{43}&next=/$`));
    const ticket = new URL(url).searchParams.get("ticket")!;
    // The ticket is on the browser's command line only: not printed.
    expect(open.stdout + open.stderr).not.toContain(ticket);

    const page = await b.context.newPage();
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    expect(page.url()).toBe(`${d.url}/`);
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

    // Spent: the same link again (another process that read it) gets no cookie.
    const again = await fetch(url, { redirect: "manual" });
    expect(again.status).toBe(401);
    expect(again.headers.get("set-cookie")).toBeNull();
  });

  test("dionysus open --print only prints the URL: no ticket is asked for, no browser runs", async () => {
    const r = await runCli(["open", "--print", "--data-dir", dir], { baseEnv: cleanEnv(browser.env) });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(`${d.url}/\n`);
    const json = await runCli(["open", "--json", "--data-dir", dir], { baseEnv: cleanEnv(browser.env) });
    expect(JSON.parse(json.stdout)).toEqual({ url: `${d.url}/` });
  });

  test("without a session the page is the sign-in page; a wrong token is refused; the token signs the browser in", async () => {
    await b.context.clearCookies();
    const page = await b.context.newPage();
    const res = await page.goto(`${d.url}/`);
    expect(res?.status()).toBe(401);
    expect(await page.getByTestId("token-path").textContent()).toBe(join(dir, "api-token"));
    expect(await page.locator("body").textContent()).toContain("dionysus open");
    expect(await page.locator("body").textContent()).not.toContain("coffee");
    await page.screenshot({ path: join(SCREENSHOTS, "edge-signin.png"), fullPage: true });

    await page.getByLabel("API token").fill("not-the-token");
    await Promise.all([
      page.waitForURL(`${d.url}/session`),
      page.getByRole("button", { name: "Sign in" }).click(),
    ]);
    expect(await page.getByTestId("signin-error").textContent()).toContain("not this daemon's API token");
    expect(await b.context.cookies(d.url)).toEqual([]);

    await page.getByLabel("API token").fill(edgeToken(dir));
    await Promise.all([page.waitForURL(`${d.url}/`), page.getByRole("button", { name: "Sign in" }).click()]);
    expect(await page.getByTestId("count").textContent()).toBe("3");
    const session = (await b.context.cookies(d.url)).find((c) => c.name === "dionysus_session");
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe("Strict");
    expect(session?.secure).toBe(false);
    await page.close();
  });

  test("dionysus open that cannot read the token says so in one line and exits 4", async () => {
    // A data dir announcing the same daemon, but without the token (as another user sees it).
    const other = tmp.dir();
    copyFileSync(join(dir, "daemon.json"), join(other, "daemon.json"));
    const r = await runCli(["open", "--data-dir", other], { baseEnv: cleanEnv(browser.env) });
    expect(r.code).toBe(4);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(join(other, "api-token"));
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
    let memoryId: string;
    try {
      memoryId = (
        db.query("SELECT memory_id FROM sync_queue WHERE mutation_id = 2").get() as { memory_id: string }
      ).memory_id;
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
      // Requeued under a new mutation number (the VPS has already answered the old one): the
      // failed row is gone, and the same memory waits queued under a number after the others.
      expect(check.query("SELECT status FROM sync_queue WHERE mutation_id = 2").get()).toBeNull();
      expect(
        check.query("SELECT mutation_id, status FROM sync_queue WHERE memory_id = ?").all(memoryId),
      ).toEqual([{ mutation_id: 4, status: "queued" }]);
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

  test("without a cookie, / is refused to a foreign Host; GET /session gives a mere caller nothing", async () => {
    const foreign = await fetch(`${d.url}/`, { headers: { Host: "evil.example" }, redirect: "manual" });
    expect(foreign.status).toBe(403);
    for (const headers of [{}, { "Sec-Fetch-Site": "cross-site" }] as Record<string, string>[]) {
      const res = await fetch(`${d.url}/session?next=/`, { headers, redirect: "manual" });
      expect([401, 403]).toContain(res.status);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(res.headers.get("set-cookie")).toBeNull();
    }
  });

  test("the daemon's output never holds a ticket, the token or the cookie", async () => {
    const cookie = (await b.context.cookies(d.url)).find((c) => c.name === "dionysus_session")!.value;
    const opened = browser.opened();
    expect((await runCli(["open", "--data-dir", dir], { baseEnv: cleanEnv(browser.env) })).code).toBe(0);
    const ticket = new URL(await opened).searchParams.get("ticket")!;
    expect((await fetch(`${d.url}/session?ticket=${ticket}`)).status).toBe(204);
    await d.stop();
    // The harness read stdout up to the announcement; the rest is read here.
    let out = await new Response(d.proc.stderr).text();
    const rest = d.proc.stdout.getReader();
    for (let r = await rest.read(); !r.done; r = await rest.read()) out += new TextDecoder().decode(r.value);
    for (const secret of [ticket, cookie, edgeToken(dir)]) expect(out).not.toContain(secret);
  });
});
