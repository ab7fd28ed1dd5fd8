import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { LocalMemory } from "../../src/core/memory.ts";
import { EdgeHealth, RecallResponse } from "../../src/core/protocol/edge-api.ts";
import { VERSION } from "../../src/core/version.ts";
import { createEdgeApp, type EdgeAppDeps, type SyncControl } from "../../src/edge/http/app.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";

let dir: string;
let store: EdgeStore;
let app: Hono;
let writes: number;

/** A sync engine stand-in: offline, not logged in, adding nothing to the status. */
function stubSync(over: Partial<SyncControl>): SyncControl {
  return {
    onLocalWrite: () => {},
    status: () => ({}),
    online: () => false,
    auth: () => "none",
    syncNow: async () => ({}),
    ...over,
  };
}

function make(over: Partial<EdgeAppDeps> = {}, maxContentBytes = 1000) {
  store = createSqliteStore({ path: join(dir, "edge.db"), maxContentBytes });
  writes = 0;
  app = createEdgeApp({
    store,
    apiToken: null,
    config: {
      host: "127.0.0.1",
      max_content_bytes: maxContentBytes,
      allowed_origins: ["http://localhost:5173"],
    },
    sync: stubSync({
      onLocalWrite: () => {
        writes++;
      },
    }),
    log: () => {},
    ...over,
  });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dionysus-app-"));
  make();
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "Content-Type": "application/json", ...headers },
  body: typeof body === "string" ? body : JSON.stringify(body),
});

async function create(
  content: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const res = await app.request("/v1/memories", json({ content, ...extra }, headers));
  expect(res.status).toBe(201);
  return LocalMemory.parse(await res.json());
}

async function expectProblem(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toContain("application/problem+json");
  const body = (await res.json()) as { status: number; code: string; detail: string; type: string };
  expect(body).toMatchObject({ status, code });
  expect(body.detail.length).toBeGreaterThan(0);
  return body;
}

function storedState() {
  return { count: store.countMemories(), queue: store.queueCounts(), recent: store.recent(100) };
}

describe("GET /health", () => {
  test("reports version, device id, offline and queue counts", async () => {
    await create("one");
    const res = await app.request("/health");
    expect(res.status).toBe(200);
    const h = EdgeHealth.parse(await res.json());
    expect(h).toEqual({
      status: "ok",
      version: VERSION,
      device_id: store.deviceId,
      online: false,
      queue: { queued: 1, syncing: 0, synced: 0, failed: 0 },
      auth: "none",
    });
  });

  test("takes online and auth from the sync engine's hooks", async () => {
    store.close();
    make({ sync: stubSync({ online: () => true, auth: () => "reauth_required" }) });
    const h = EdgeHealth.parse(await (await app.request("/health")).json());
    expect(h.online).toBe(true);
    expect(h.auth).toBe("reauth_required");
  });
});

describe("memories", () => {
  test("POST creates a local memory, queues it and tells the sync hook", async () => {
    const res = await app.request(
      "/v1/memories",
      json({ content: "Lunch with Sam", tags: ["sam"], kind: "identity" }),
    );
    expect(res.status).toBe(201);
    const m = LocalMemory.parse(await res.json());
    expect(res.headers.get("location")).toBe(`/v1/memories/${m.id}`);
    expect(m).toMatchObject({ content: "Lunch with Sam", tags: ["sam"], kind: "identity", origin: "local" });
    expect(writes).toBe(1);
    expect(store.queueCounts().queued).toBe(1);
  });

  test("GET, PATCH and DELETE by id", async () => {
    const m = await create("Paris in May");
    const got = await app.request(`/v1/memories/${m.id}`);
    expect(got.status).toBe(200);
    expect(LocalMemory.parse(await got.json()).content).toBe("Paris in May");

    const patched = await app.request(`/v1/memories/${m.id}`, {
      ...json({ content: "Paris in June" }),
      method: "PATCH",
    });
    expect(patched.status).toBe(200);
    expect(LocalMemory.parse(await patched.json())).toMatchObject({ id: m.id, content: "Paris in June" });

    const del = await app.request(`/v1/memories/${m.id}`, { method: "DELETE" });
    expect(del.status).toBe(204);
    expect(writes).toBe(3);
    await expectProblem(await app.request(`/v1/memories/${m.id}`), 404, "not_found");
    await expectProblem(await app.request(`/v1/memories/${m.id}`, { method: "DELETE" }), 404, "not_found");
    expect(store.queueCounts().queued).toBe(3);
  });

  test("unknown ids are 404 problems and change nothing", async () => {
    await create("existing");
    const before = storedState();
    const id = "0190d0b0-0000-7000-8000-000000000000";
    await expectProblem(await app.request(`/v1/memories/${id}`), 404, "not_found");
    await expectProblem(
      await app.request(`/v1/memories/${id}`, { ...json({ content: "x" }), method: "PATCH" }),
      404,
      "not_found",
    );
    await expectProblem(await app.request(`/v1/memories/${id}`, { method: "DELETE" }), 404, "not_found");
    await expectProblem(await app.request("/v1/memories/not-a-uuid"), 404, "not_found");
    expect(storedState()).toEqual(before);
    expect(writes).toBe(1);
  });

  test("GET /v1/memories?recent=N lists the newest first", async () => {
    for (const c of ["a first", "b second", "c third"]) await create(c);
    const res = await app.request("/v1/memories?recent=2");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { memories: unknown[] };
    expect(body.memories.map((m) => LocalMemory.parse(m).content)).toEqual(["c third", "b second"]);
    const all = (await (await app.request("/v1/memories")).json()) as { memories: unknown[] };
    expect(all.memories).toHaveLength(3);
  });

  test.each(["0", "101", "-1", "abc", "1.5"])("recent=%s is refused with 400", async (n) => {
    const body = await expectProblem(await app.request(`/v1/memories?recent=${n}`), 400, "invalid_input");
    expect(body.detail).toContain("recent");
  });
});

describe("bad input changes nothing", () => {
  const cases: [string, () => RequestInit, number, string][] = [
    ["empty content", () => json({ content: "" }), 400, "invalid_input"],
    ["whitespace-only content", () => json({ content: " \n\t  " }), 400, "invalid_input"],
    ["missing content", () => json({ tags: ["x"] }), 400, "invalid_input"],
    ["content over the limit", () => json({ content: "x".repeat(1001) }), 413, "payload_too_large"],
    ["a body far over the limit", () => json({ content: "y".repeat(200_000) }), 413, "payload_too_large"],
    ["malformed JSON", () => json('{"content": "unterminated'), 400, "invalid_input"],
    ["a JSON array", () => json("[1,2]"), 400, "invalid_input"],
    ["an unknown kind", () => json({ content: "ok", kind: "dream" }), 400, "invalid_input"],
    ["an empty tag", () => json({ content: "ok", tags: [""] }), 400, "invalid_input"],
    [
      "a text body",
      () => ({ method: "POST", headers: { "Content-Type": "text/plain" }, body: "hello" }),
      415,
      "unsupported_media_type",
    ],
    [
      "invalid UTF-8",
      () => ({
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: new Uint8Array([
          ...new TextEncoder().encode('{"content":"bad '),
          0xff,
          0xfe,
          ...new TextEncoder().encode('"}'),
        ]),
      }),
      400,
      "invalid_input",
    ],
  ];

  test.each(cases)("POST /v1/memories with %s", async (_name, init, status, code) => {
    await create("already stored");
    const before = storedState();
    await expectProblem(await app.request("/v1/memories", init()), status, code);
    expect(storedState()).toEqual(before);
    expect(writes).toBe(1);
  });

  test("PATCH with nothing to update, or with empty content, is 400 and changes nothing", async () => {
    const m = await create("original");
    const before = storedState();
    await expectProblem(
      await app.request(`/v1/memories/${m.id}`, { ...json({}), method: "PATCH" }),
      400,
      "invalid_input",
    );
    await expectProblem(
      await app.request(`/v1/memories/${m.id}`, { ...json({ content: "  " }), method: "PATCH" }),
      400,
      "invalid_input",
    );
    await expectProblem(
      await app.request(`/v1/memories/${m.id}`, { ...json({ content: "z".repeat(1001) }), method: "PATCH" }),
      413,
      "payload_too_large",
    );
    expect(storedState()).toEqual(before);
  });
});

describe("POST /v1/recall: time in the query", () => {
  let strong: string;
  let dated: string;
  beforeEach(async () => {
    strong = (
      await create("Nate likes to make coconut ice cream; Nate will make it again", {
        occurred_at: "2023-03-01T12:00:00Z",
      })
    ).id;
    dated = (await create("Nate: I make a coconut dish for dinner", { occurred_at: "2022-11-09T18:00:00Z" }))
      .id;
  });
  const ask = async (extra: Record<string, unknown> = {}) => {
    const res = await app.request(
      "/v1/recall",
      json({ query: "What did Nate make on 9 November, 2022?", mode: "keyword", ...extra }),
    );
    expect(res.status).toBe(200);
    return RecallResponse.parse(await res.json());
  };

  test("boost (the default) ranks the memory of that day first and says how it read the words", async () => {
    const body = await ask();
    expect(body.results.map((r) => r.memory.id)).toEqual([dated, strong]);
    expect(body.time).toEqual({
      phrase: "on 9 November, 2022",
      since: "2022-11-09T00:00:00.000Z",
      until: "2022-11-10T00:00:00.000Z",
      use: "boost",
    });
  });

  test("filter keeps only that day; off reads the words only and reports no time", async () => {
    const filtered = await ask({ time: "filter" });
    expect(filtered.results.map((r) => r.memory.id)).toEqual([dated]);
    expect(filtered.time?.use).toBe("filter");
    const off = await ask({ time: "off" });
    expect(off.results.map((r) => r.memory.id)).toEqual([strong, dated]);
    expect(off.time).toBeUndefined();
  });

  test("an unknown time use is refused with 400", async () => {
    const body = await expectProblem(
      await app.request("/v1/recall", json({ query: "coffee yesterday", time: "sometimes" })),
      400,
      "invalid_input",
    );
    expect(body.detail).toContain("time");
  });
});

describe("POST /v1/recall", () => {
  beforeEach(async () => {
    await create("Running along the river every morning before work.");
    await create("Coffee with Ana: her new job at the museum starts in May.");
    await create("Grocery list: eggs, flour, coffee beans.");
  });

  test("answers ranked local hits with snippets", async () => {
    const res = await app.request("/v1/recall", json({ query: "coffee museum", limit: 5 }));
    expect(res.status).toBe(200);
    const body = RecallResponse.parse(await res.json());
    expect(body.routed).toBe("local");
    expect(body.took_ms).toBeGreaterThanOrEqual(0);
    expect(body.results.map((r) => r.memory.content)).toEqual([
      "Coffee with Ana: her new job at the museum starts in May.",
      "Grocery list: eggs, flour, coffee beans.",
    ]);
    expect(body.results[0]!.snippet).toContain("**museum**");
    expect(body.degraded).toBeUndefined();
  });

  test("limit caps the results, and words match by stem (runs finds running)", async () => {
    const one = RecallResponse.parse(
      await (await app.request("/v1/recall", json({ query: "coffee", limit: 1 }))).json(),
    );
    expect(one.results).toHaveLength(1);
    const stem = RecallResponse.parse(
      await (await app.request("/v1/recall", json({ query: "runs" }))).json(),
    );
    expect(stem.results.map((r) => r.memory.content)).toEqual([
      "Running along the river every morning before work.",
    ]);
  });

  test.each([
    '"',
    "*",
    "foo AND (",
    "NEAR(",
    "-x",
    "'; drop table memories; --",
    "🍕 🎉",
    "coffee) OR (",
    "^",
    "ana*",
  ])("the query %p is user text: 200 with a list", async (query) => {
    const res = await app.request("/v1/recall", json({ query }));
    expect(res.status).toBe(200);
    const body = RecallResponse.parse(await res.json());
    expect(Array.isArray(body.results)).toBe(true);
    if (query === "ana*") expect(body.results[0]?.memory.content).toContain("Ana");
    expect(store.countMemories()).toBe(3);
  });

  test.each([0, 101, -5, 2.5, "ten"])("limit %p is refused with 400", async (limit) => {
    const body = await expectProblem(
      await app.request("/v1/recall", json({ query: "coffee", limit })),
      400,
      "invalid_input",
    );
    expect(body.detail).toContain("limit");
  });

  test("an empty query, a missing query or an unknown mode is 400", async () => {
    await expectProblem(await app.request("/v1/recall", json({ query: "   " })), 400, "invalid_input");
    await expectProblem(await app.request("/v1/recall", json({})), 400, "invalid_input");
    await expectProblem(
      await app.request("/v1/recall", json({ query: "x", mode: "psychic" })),
      400,
      "invalid_input",
    );
    await expectProblem(await app.request("/v1/recall", json("{nope")), 400, "invalid_input");
  });

  test("without a VPS, a semantic request is answered on the device by meaning, not degraded", async () => {
    await create("The puppy chewed my new slippers");
    await create("The printer is out of toner");
    const body = RecallResponse.parse(
      await (await app.request("/v1/recall", json({ query: "my dog", mode: "semantic" }))).json(),
    );
    expect(body.routed).toBe("local");
    expect(body.degraded).toBeUndefined();
    expect(body.results[0]?.memory.content).toBe("The puppy chewed my new slippers");
  });
});

describe("GET /v1/sync/status", () => {
  test("returns queue counts and what the sync engine adds", async () => {
    await create("queued one");
    expect(await (await app.request("/v1/sync/status")).json()).toEqual({
      queue: { queued: 1, syncing: 0, synced: 0, failed: 0 },
    });
    store.close();
    make({ sync: stubSync({ status: () => ({ last_success: null, vps_url: "https://vps.example" }) }) });
    expect(await (await app.request("/v1/sync/status")).json()).toMatchObject({
      queue: { queued: 1 },
      vps_url: "https://vps.example",
    });
  });
});

describe("who may call", () => {
  test.each(["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "localhost", "LOCALHOST:1"])(
    "Host %s is served",
    async (host) => {
      expect((await app.request("/health", { headers: { Host: host } })).status).toBe(200);
    },
  );

  test.each(["evil.example", "evil.example:8080", "127.0.0.1.nip.io", "192.168.1.10:8080"])(
    "Host %s is refused (DNS rebinding)",
    async (host) => {
      await expectProblem(await app.request("/health", { headers: { Host: host } }), 403, "forbidden");
      await expectProblem(
        await app.request("/v1/memories", json({ content: "sneaky" }, { Host: host })),
        403,
        "forbidden",
      );
      expect(store.countMemories()).toBe(0);
    },
  );

  test("a foreign Origin is refused and nothing is written", async () => {
    await expectProblem(
      await app.request(
        "/v1/memories",
        json({ content: "from a web page" }, { Origin: "https://evil.example" }),
      ),
      403,
      "forbidden",
    );
    await expectProblem(
      await app.request("/health", { headers: { Origin: "http://localhost:3000" } }),
      403,
      "forbidden",
    );
    await expectProblem(
      await app.request("/health", { headers: { "Sec-Fetch-Site": "cross-site" } }),
      403,
      "forbidden",
    );
    expect(store.countMemories()).toBe(0);
  });

  test("an allowed Origin gets CORS, including the preflight", async () => {
    const origin = "http://localhost:5173";
    const pre = await app.request("/v1/recall", {
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get("access-control-allow-origin")).toBe(origin);
    expect(pre.headers.get("access-control-allow-methods")).toContain("POST");
    const res = await app.request("/v1/memories", json({ content: "from my own app" }, { Origin: origin }));
    expect(res.status).toBe(201);
    expect(res.headers.get("access-control-allow-origin")).toBe(origin);
  });

  test("a daemon configured on another address also answers that name", async () => {
    store.close();
    make({ config: { host: "10.0.0.5" } });
    expect((await app.request("/health", { headers: { Host: "10.0.0.5:8080" } })).status).toBe(200);
    await expectProblem(
      await app.request("/health", { headers: { Host: "evil.example" } }),
      403,
      "forbidden",
    );
  });
});

describe("errors", () => {
  test("an unknown route is a 404 problem", async () => {
    await expectProblem(await app.request("/v2/nothing"), 404, "not_found");
  });

  test("an unexpected failure is a logged 500 that leaks no internals", async () => {
    const logged: string[] = [];
    const broken = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === "recall")
          return () => {
            throw new Error("disk on fire at /secret/path");
          };
        return Reflect.get(target, prop, receiver);
      },
    });
    const app2 = createEdgeApp({ store: broken, apiToken: null, log: (m) => logged.push(m) });
    const body = await expectProblem(await app2.request("/v1/recall", json({ query: "x" })), 500, "internal");
    expect(body.detail).not.toContain("secret");
    expect(logged).toHaveLength(1);
  });
});

describe("the API token", () => {
  const token = "tok_0123456789abcdefghijklmnopqrstuvwxyzABCDE";
  /** What Bun.serve passes as the env: the peer address of the connection. */
  const peer = (address: string) => ({ requestIP: () => ({ address, family: "IPv4", port: 50000 }) });
  const bearer = (t = token) => ({ Authorization: `Bearer ${t}` });

  beforeEach(() => {
    store.close();
    make({ apiToken: token });
  });

  test("without it or with a wrong one: 401 problem+json with a Bearer challenge", async () => {
    store.create({ content: "my private note", kind: "episodic", tags: [], metadata: {} });
    expect((await app.request("/health")).status).toBe(200);
    for (const headers of [{}, bearer("wrong"), { Authorization: token }, { Authorization: "Basic eDp5" }]) {
      const res = await app.request("/v1/memories", { headers });
      const body = await expectProblem(res, 401, "unauthorized");
      expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      expect(body.detail).toContain("api-token");
      expect(JSON.stringify(body)).not.toContain("private note");
      expect(JSON.stringify(body)).not.toContain(token);
    }
    const before = storedState();
    for (const [path, init] of [
      ["/v1/memories", json({ content: "planted by someone else" })],
      ["/v1/recall", json({ query: "private" })],
      ["/v1/sync/status", {}],
      ["/v1/sync/run", { method: "POST" }],
      ["/v1/conflicts", {}],
      ["/v1/consolidate", { method: "POST" }],
    ] as const)
      await expectProblem(await app.request(path, init), 401, "unauthorized");
    const id = store.recent(1)[0]!.id;
    await expectProblem(await app.request(`/v1/memories/${id}`), 401, "unauthorized");
    await expectProblem(await app.request(`/v1/memories/${id}`, { method: "DELETE" }), 401, "unauthorized");
    await expectProblem(
      await app.request(`/v1/memories/${id}`, { ...json({ content: "changed" }), method: "PATCH" }),
      401,
      "unauthorized",
    );
    expect(storedState()).toEqual(before);
  });

  test("with it: the API answers", async () => {
    const res = await app.request("/v1/memories", json({ content: "mine" }, bearer()));
    expect(res.status).toBe(201);
    const list = await app.request("/v1/memories", { headers: { authorization: `bearer  ${token}` } });
    expect(list.status).toBe(200);
    expect(((await list.json()) as { memories: unknown[] }).memories).toHaveLength(1);
  });

  const ticket = async () => {
    const res = await app.request("/v1/session/ticket", { method: "POST", headers: bearer() });
    expect(res.status).toBe(201);
    expect(res.headers.get("cache-control")).toBe("no-store");
    return (await res.json()) as { ticket: string; expires_at: string };
  };

  test("GET /session without a ticket, or with one made up, is refused: no cookie for a mere caller", async () => {
    for (const path of [
      "/session",
      "/session?next=/",
      "/session?ticket=",
      "/session?ticket=made-up&next=/",
    ]) {
      const res = await app.request(path, {}, peer("127.0.0.1"));
      const body = await expectProblem(res, 401, "unauthorized");
      expect(body.detail).toContain("dionysus open");
      expect(body.detail).toContain("api-token");
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    // A browser navigating there gets the sign-in page with the reason, still without a cookie.
    const page = await app.request("/session", { headers: { Accept: "text/html" } }, peer("127.0.0.1"));
    expect(page.status).toBe(401);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("needs a ticket");
    expect(page.headers.get("set-cookie")).toBeNull();
    // Minting a ticket needs the token itself.
    await expectProblem(await app.request("/v1/session/ticket", { method: "POST" }), 401, "unauthorized");
  });

  test("a ticket gives an HttpOnly, SameSite=Strict cookie once; the cookie works; a forged one does not", async () => {
    const t = await ticket();
    expect(t.ticket).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(t.expires_at)).toBeGreaterThan(Date.now());
    const res = await app.request(`/session?ticket=${t.ticket}`, {}, peer("127.0.0.1"));
    expect(res.status).toBe(204);
    const cookie = res.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^dionysus_session=[A-Za-z0-9_-]{43}; /);
    for (const attr of ["HttpOnly", "SameSite=Strict", "Path=/"]) expect(cookie).toContain(attr);
    expect(cookie).not.toContain("Secure");
    expect(cookie).not.toContain(token);
    expect(cookie).not.toContain(t.ticket);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    // Spent: the same ticket again is refused.
    const again = await app.request(`/session?ticket=${t.ticket}`, {}, peer("127.0.0.1"));
    await expectProblem(again, 401, "unauthorized");
    expect(again.headers.get("set-cookie")).toBeNull();
    // `next=/` sends the browser on to the page.
    const next = await app.request(`/session?ticket=${(await ticket()).ticket}&next=/`, {}, peer("::1"));
    expect(next.status).toBe(303);
    expect(next.headers.get("location")).toBe("/");
    expect(next.headers.get("set-cookie")).toBe(cookie);

    const pair = cookie.split(";")[0]!;
    const ok = await app.request("/v1/memories", { headers: { Cookie: `theme=dark; ${pair}` } });
    expect(ok.status).toBe(200);
    // A same-origin page's write, as a browser sends it.
    const w = await app.request(
      "/v1/memories",
      json(
        { content: "from the status page" },
        { Cookie: pair, Origin: "http://localhost", Host: "localhost" },
      ),
    );
    expect(w.status).toBe(201);
    // Another value, or the cookie of another daemon run, is refused.
    await expectProblem(
      await app.request("/v1/memories", { headers: { Cookie: "dionysus_session=forged" } }),
      401,
      "unauthorized",
    );
    store.close();
    make({ apiToken: token });
    await expectProblem(
      await app.request("/v1/memories", { headers: { Cookie: pair } }),
      401,
      "unauthorized",
    );
  });

  test("GET /session refuses other machines, other sites, rebinding names and unknown peers, ticket or not", async () => {
    const t = (await ticket()).ticket;
    for (const [init, env] of [
      [{}, peer("192.0.2.7")],
      [{}, peer("::ffff:10.0.0.2")],
      [{}, undefined],
      [{ headers: { "Sec-Fetch-Site": "cross-site" } }, peer("127.0.0.1")],
      [{ headers: { Origin: "http://evil.example" } }, peer("127.0.0.1")],
      [{ headers: { Host: "evil.example" } }, peer("127.0.0.1")],
    ] as const) {
      const res = await app.request(`/session?ticket=${t}`, init, env);
      await expectProblem(res, 403, "forbidden");
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    // None of the refusals spent the ticket.
    expect((await app.request(`/session?ticket=${t}`, {}, peer("127.8.9.10"))).status).toBe(204);
    for (const address of ["127.0.0.1", "::1", "::ffff:127.0.0.1"])
      expect(
        (await app.request(`/session?ticket=${(await ticket()).ticket}`, {}, peer(address))).status,
      ).toBe(204);
  });

  test("POST /session (the sign-in form) sets the cookie for the token only, from the daemon's own page only", async () => {
    const form = (body: string, headers: Record<string, string> = {}, address = "127.0.0.1") =>
      app.request(
        "/session",
        {
          method: "POST",
          headers: {
            "Content-Type": "application/x-www-form-urlencoded",
            Host: "127.0.0.1:8080",
            Origin: "http://127.0.0.1:8080",
            Accept: "text/html",
            ...headers,
          },
          body,
        },
        peer(address),
      );
    const wrong = await form("token=not-the-token");
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const html = await wrong.text();
    expect(html).toContain("not this daemon&#39;s API token");
    expect(html).not.toContain("not-the-token");
    for (const [headers, address] of [
      [{ Origin: "http://evil.example" }, "127.0.0.1"],
      [{ Origin: "null" }, "127.0.0.1"],
      [{ Origin: "" }, "127.0.0.1"],
      [{}, "192.0.2.7"],
    ] as const) {
      const res = await form(`token=${token}`, headers, address);
      await expectProblem(res, 403, "forbidden");
      expect(res.headers.get("set-cookie")).toBeNull();
    }
    const noOrigin = await app.request(
      "/session",
      {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Host: "127.0.0.1:8080" },
        body: `token=${token}`,
      },
      peer("127.0.0.1"),
    );
    await expectProblem(noOrigin, 403, "forbidden");
    await expectProblem(
      await form(JSON.stringify({ token }), { "Content-Type": "application/json" }),
      415,
      "unsupported_media_type",
    );
    const ok = await form(`token=${encodeURIComponent(token)}`);
    expect(ok.status).toBe(303);
    expect(ok.headers.get("location")).toBe("/");
    const cookie = ok.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(/^dionysus_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/$/);
    expect((await app.request("/v1/memories", { headers: { Cookie: cookie.split(";")[0]! } })).status).toBe(
      200,
    );
  });

  test("the sign-in form answers 429 after 10 wrong tokens in a minute (the clock injected), then takes tokens again", async () => {
    let now = Date.parse("2026-11-30T04:00:00Z");
    store.close();
    make({ apiToken: token, now: () => now });
    const form = (t: string) =>
      app.request(
        "/session",
        {
          method: "POST",
          headers: {
            "Content-Type": "application/x-www-form-urlencoded",
            Host: "127.0.0.1:8080",
            Origin: "http://127.0.0.1:8080",
          },
          body: `token=${t}`,
        },
        peer("127.0.0.1"),
      );
    for (let i = 0; i < 10; i++) expect((await form(`wrong${i}`)).status).toBe(401);
    const blocked = await form(token);
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("retry-after")).toBe("60");
    expect(blocked.headers.get("set-cookie")).toBeNull();
    expect(await blocked.text()).toContain("Too many wrong tokens");
    now += 30_000;
    expect((await form(token)).status).toBe(429);
    now += 30_001;
    const ok = await form(token);
    expect(ok.status).toBe(303);
    expect(ok.headers.get("set-cookie")).toStartWith("dionysus_session=");
  });

  test("a ticket expires 60 s after it was issued (the clock injected)", async () => {
    let now = Date.parse("2026-11-30T04:00:00Z");
    store.close();
    make({ apiToken: token, now: () => now });
    const t = await ticket();
    expect(t.expires_at).toBe("2026-11-30T04:01:00.000Z");
    const fresh = await ticket();
    now += 59_999;
    expect((await app.request(`/session?ticket=${fresh.ticket}`, {}, peer("127.0.0.1"))).status).toBe(204);
    now += 1;
    const late = await app.request(`/session?ticket=${t.ticket}`, {}, peer("127.0.0.1"));
    await expectProblem(late, 401, "unauthorized");
    expect(late.headers.get("set-cookie")).toBeNull();
  });
});

describe("scopes, sources, filters and private memories over HTTP", () => {
  test("source is api, or cli/mcp from Dionysus's client header; a body naming it is refused", async () => {
    expect((await create("from curl")).source).toBe("api");
    expect((await create("from the CLI", {}, { "X-Dionysus-Client": "cli" })).source).toBe("cli");
    expect((await create("from MCP", {}, { "X-Dionysus-Client": "mcp:claude-desktop" })).source).toBe(
      "mcp:claude-desktop",
    );
    expect((await create("a stranger", {}, { "X-Dionysus-Client": "vps" })).source).toBe("api");
    const before = storedState();
    const body = await expectProblem(
      await app.request("/v1/memories", json({ content: "x", source: "cli" })),
      400,
      "invalid_input",
    );
    expect(body.detail).toContain("source");
    expect(storedState()).toEqual(before);
  });

  test("scope and occurred_at are stored; a bad one is a 400 naming the field and stores nothing", async () => {
    const m = await create("met Ana", { scope: "project/dionysus", occurred_at: "2026-02-27T09:00:00Z" });
    expect(m).toMatchObject({ scope: "project/dionysus", occurred_at: "2026-02-27T09:00:00Z" });
    const before = storedState();
    for (const [extra, field] of [
      [{ scope: "bad scope" }, "scope"],
      [{ scope: "a//b" }, "scope"],
      [{ occurred_at: "last tuesday" }, "occurred_at"],
    ] as const) {
      const body = await expectProblem(
        await app.request("/v1/memories", json({ content: "x", ...extra })),
        400,
        "invalid_input",
      );
      expect(body.detail).toContain(field);
    }
    expect(storedState()).toEqual(before);
  });

  test("list and recall take the filter; bad filters are 400s naming the field", async () => {
    const work = await create("work note", { scope: "work", tags: ["a", "b"], metadata: { n: 2 } });
    await create("home note", { scope: "home", tags: ["a"] });
    const list = async (q: string) => {
      const res = await app.request(`/v1/memories?${q}`);
      expect(res.status).toBe(200);
      return ((await res.json()) as { memories: LocalMemory[] }).memories.map((m) => m.content);
    };
    expect(await list("scope=work")).toEqual(["work note"]);
    expect(await list("tag=a&tag=b")).toEqual(["work note"]);
    expect(await list("meta=n=2")).toEqual(["work note"]);
    expect(await list("source=api&since=1h")).toHaveLength(2);
    const recall = await app.request("/v1/recall", json({ query: "note", filter: { scope: "work" } }));
    expect(RecallResponse.parse(await recall.json()).results.map((h) => h.memory.id)).toEqual([work.id]);

    const bad: Array<[string, RequestInit | undefined, string]> = [
      ["/v1/memories?scope=Bad Scope", undefined, "scope"],
      ["/v1/memories?since=yesterday", undefined, "since"],
      ["/v1/memories?since=1h&until=2h", undefined, "since"],
      ["/v1/memories?meta=novalue", undefined, "meta"],
      ["/v1/recall", json({ query: "note", filter: { color: "red" } }), "color"],
      ["/v1/recall", json({ query: "note", filter: { scope: "a//b" } }), "filter.scope"],
      ["/v1/recall", json({ query: "note", filter: { since: "7x" } }), "filter.since"],
      [
        "/v1/recall",
        json({ query: "note", filter: { since: "2026-02-01T00:00:00Z", until: "2026-01-01T00:00:00Z" } }),
        "until",
      ],
      ["/v1/recall", json({ query: "note", filter: { metadata: { k: { nested: 1 } } } }), "filter.metadata"],
    ];
    for (const [path, init, field] of bad) {
      const body = await expectProblem(await app.request(path, init), 400, "invalid_input");
      expect(body.detail).toContain(field);
    }
  });

  test("a default scope goes to writes without one and narrows reads; * reads everything", async () => {
    store.close();
    make({ config: { host: "127.0.0.1", max_content_bytes: 1000, scope: "project" } });
    const m = await create("scoped by default");
    expect(m.scope).toBe("project");
    expect((await create("explicit", { scope: "home" })).scope).toBe("home");
    expect((await create("sub", { scope: "project/sub" })).scope).toBe("project/sub");
    const list = async (q: string) =>
      ((await (await app.request(`/v1/memories?${q}`)).json()) as { memories: LocalMemory[] }).memories
        .map((x) => x.content)
        .sort();
    expect(await list("")).toEqual(["scoped by default", "sub"]);
    expect(await list("scope=*")).toEqual(["explicit", "scoped by default", "sub"]);
    expect(await list("scope=home")).toEqual(["explicit"]);
  });

  test("private: true is stored, listed and never queued; PATCH private moves it off and back", async () => {
    const p = await create("a private thought", { private: true });
    expect(p.private).toBe(true);
    expect(store.queueCounts().queued).toBe(0);
    const patched = await app.request(`/v1/memories/${p.id}`, {
      ...json({ private: false }),
      method: "PATCH",
    });
    expect(patched.status).toBe(200);
    expect(store.queueCounts().queued).toBe(1);
  });
});
