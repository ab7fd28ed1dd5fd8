/**
 * The edge status page in process (no browser; tests/e2e/edge-status-page.test.ts drives it in
 * chromium): what it shows, that user text cannot inject markup, its headers, bad filters, the
 * sign-in-again banner and the backoff, and the retry form's checks.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { createEdgeApp } from "../../src/edge/http/app.ts";
import { STATUS_PAGE_CSP } from "../../src/edge/http/pages/routes.tsx";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";

let dir: string;
let store: EdgeStore;
let app: Hono;
let status: object;
let nudged: number;
const TOKEN = "t".repeat(43);
const auth = { Authorization: `Bearer ${TOKEN}`, Host: "127.0.0.1:8080" };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dionysus-page-"));
  store = createSqliteStore({ path: join(dir, "edge.db") });
  status = {};
  nudged = 0;
  app = createEdgeApp({
    store,
    apiToken: TOKEN,
    sync: {
      onLocalWrite: () => {
        nudged++;
      },
      status: () => status,
      online: () => false,
      auth: () => "none",
      syncNow: async () => ({}),
    },
    log: () => {},
  });
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const page = async (path = "/") => {
  const res = await app.request(path, { headers: auth });
  return { res, html: await res.text() };
};

describe("GET /", () => {
  test("shows the count and the recent memories; user text is escaped, never markup", async () => {
    store.create({
      content: "<script>alert(1)</script> & <b>bold</b>",
      kind: "episodic",
      tags: ['"><img src=x>'],
      metadata: {},
    });
    store.create({ content: "second memory", kind: "identity", tags: [], metadata: {} });
    const { res, html } = await page();
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toBe(STATUS_PAGE_CSP);
    expect(res.headers.get("x-frame-options")).toBe("DENY");
    expect(html).toStartWith("<!doctype html>");
    expect(html).toContain('data-testid="count">2<');
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;");
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<img");
    expect(html.indexOf("second memory")).toBeLessThan(html.indexOf("alert(1)"));
  });

  test("a search marks the matched words; the filters narrow it; a bad filter is a 400", async () => {
    store.create({ content: "Lunch with Ana", kind: "episodic", tags: ["ana"], metadata: {} });
    store.create({ content: "Ana likes jazz", kind: "identity", tags: ["music"], metadata: {} });
    expect((await page("/?q=ana")).html).toContain("<mark>Ana</mark>");
    const identity = (await page("/?q=ana&kind=identity")).html;
    expect(identity).toContain("likes jazz");
    expect(identity).not.toContain("Lunch");
    const tagged = (await page("/?tag=music&kind=&scope=")).html;
    expect(tagged).toContain("likes jazz");
    expect(tagged).not.toContain("Lunch");
    for (const bad of [
      "/?kind=secret",
      "/?since=yesterday",
      "/?scope=Not%20A%20Scope",
      `/?q=${"x".repeat(501)}`,
    ]) {
      const r = await app.request(bad, { headers: auth });
      expect(r.status).toBe(400);
      expect(r.headers.get("content-type")).toContain("application/problem+json");
    }
  });

  test("the filters run in the store: an old memory of a rare scope is found behind 150 newer ones", async () => {
    store.create({
      content: "the old plan",
      kind: "episodic",
      tags: ["rare"],
      metadata: {},
      scope: "work/plans",
    });
    for (let i = 0; i < 150; i++)
      store.create({ content: `filler ${i}`, kind: "episodic", tags: [], metadata: {} });
    for (const path of [
      "/?scope=work/*",
      "/?tag=rare",
      "/?q=plan&scope=work/plans",
      "/?source=unknown&tag=rare",
    ]) {
      const { html } = await page(path);
      expect({ path, found: html.includes("the old ") }).toEqual({ path, found: true });
      expect(html).not.toContain("filler");
    }
    const { html } = await page("/?tag=rare&until=2000-01-01T00:00:00Z");
    expect(html).toContain("Results (0)");
  });

  test("the sign-in-again banner, the backoff and the last error come from the engine", async () => {
    expect((await page()).html).not.toContain('data-testid="reauth"');
    status = {
      auth: "reauth_required",
      vps_url: "https://vps.example",
      online: false,
      backoff_ms: 60_000,
      consecutive_failures: 2,
      next_attempt_at: "2026-11-30T01:00:00.000Z",
      last_error: "connect ECONNREFUSED",
      last_success_at: "2026-11-29T23:59:00.000Z",
    };
    const { html } = await page();
    expect(html).toContain('data-testid="reauth"');
    expect(html).toContain("dionysus login");
    expect(html).toContain("Backing off 60 s after 2 failures");
    expect(html).toContain("connect ECONNREFUSED");
    expect(html).toContain("2026-11-29 23:59:00Z");
  });

  test("without a token or cookie a browser gets the sign-in page (no user data); a wrong token is a 401", async () => {
    store.create({ content: "a private note", kind: "episodic", tags: [], metadata: {} });
    const anon = await app.request("/", { headers: { Host: "127.0.0.1:8080" } });
    expect(anon.status).toBe(401);
    expect(anon.headers.get("www-authenticate")).toStartWith("Bearer");
    expect(anon.headers.get("content-security-policy")).toBe(STATUS_PAGE_CSP);
    expect(anon.headers.get("set-cookie")).toBeNull();
    const html = await anon.text();
    expect(html).toContain('<form class="signin" method="post" action="/session">');
    expect(html).toContain("dionysus open");
    expect(html).toContain('name="token" type="password"');
    expect(html).toContain("&lt;data dir&gt;/api-token");
    expect(html).not.toContain("a private note");
    expect(html).not.toContain(TOKEN);
    const wrong = await app.request("/", {
      headers: { Host: "127.0.0.1:8080", Authorization: "Bearer nope" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("content-type")).toContain("application/problem+json");
    // The stylesheet holds nothing private: the sign-in page needs it without a session.
    const css = await app.request("/assets/status.css", { headers: { Host: "127.0.0.1:8080" } });
    expect(css.status).toBe(200);
    expect(css.headers.get("content-type")).toBe("text/css; charset=utf-8");
    expect(await css.text()).toContain(".signin");
  });
});

describe("POST /sync/retry", () => {
  const post = (body: string, headers: Record<string, string> = auth) =>
    app.request("/sync/retry", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
      body,
    });

  test("requeues only failed items named, then nudges the engine; with the token no Origin is needed", async () => {
    for (let i = 0; i < 3; i++) store.create({ content: `m${i}`, kind: "episodic", tags: [], metadata: {} });
    store.claimBatch(3);
    store.settle([
      { index: 0, mutation_id: 1, status: "rejected", code: "invalid_input", reason: "x", retryable: false },
      { index: 1, mutation_id: 2, status: "rejected", code: "invalid_input", reason: "y", retryable: false },
      { index: 2, mutation_id: 3, status: "applied" },
    ]);
    const r = await post("id=2&id=3");
    expect(r.status).toBe(303);
    expect(r.headers.get("location")).toBe("/?retried=1");
    expect(store.queueCounts()).toMatchObject({ queued: 1, failed: 1, synced: 1 });
    expect(nudged).toBe(1);
    expect((await page("/?retried=1")).html).toContain("Requeued 1 failed item.");
    const none = await post("");
    expect(none.headers.get("location")).toBe("/?retried=0");
    expect(nudged).toBe(1);
    const all = await post("all=1");
    expect(all.headers.get("location")).toBe("/?retried=1");
    expect(store.queueCounts()).toMatchObject({ queued: 2, failed: 0 });
  });

  test("more failed items than the page lists: a Retry all button", async () => {
    for (let i = 0; i < 25; i++) store.create({ content: `m${i}`, kind: "episodic", tags: [], metadata: {} });
    store.claimBatch(25);
    store.settle(
      Array.from({ length: 25 }, (_, i) => ({
        index: i,
        mutation_id: i + 1,
        status: "rejected" as const,
        code: "invalid_input",
        reason: "no",
        retryable: false,
      })),
    );
    const { html } = await page();
    expect(html).toContain("Retry all 25");
    expect((html.match(/name="id"/g) ?? []).length).toBe(20);
  });

  test("ids that are not numbers are a 400 and change nothing", async () => {
    for (const body of ["id=abc", "id=1e3", "id=-1", `id=${"9".repeat(16)}`]) {
      const r = await post(body);
      expect(r.status).toBe(400);
    }
    expect(nudged).toBe(0);
  });
});
