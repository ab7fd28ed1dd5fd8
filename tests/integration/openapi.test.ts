/**
 * The OpenAPI documents of both servers: every route the Hono apps register is documented (and
 * nothing else), both documents are served with a reference page under the right guards, real
 * answers match the documented response schemas, and every request example in the route tables
 * and in README.md / docs/*.md validates against the document (and against the zod schema it
 * was generated from). A docs example is a fenced block (JSON, or a `curl -d '…'` line) right
 * after a comment `<!-- example: edge|vps METHOD /path -->`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Hono } from "hono";
import { type ApiSpec, openApiDocument } from "../../src/core/protocol/openapi.ts";
import { createEdgeApp } from "../../src/edge/http/app.ts";
import { edgeApiSpec } from "../../src/edge/http/openapi.ts";
import { createSqliteStore } from "../../src/edge/store/sqlite/index.ts";
import type { EdgeStore } from "../../src/edge/store/types.ts";
import { vpsApiSpec } from "../../src/vps/http/openapi.ts";
import { checkJsonSchema } from "../helpers/json-schema.ts";
import { makeTestApp, openTestBackend, signIn, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

type Doc = {
  paths: Record<string, Record<string, Record<string, unknown>>>;
  components: { schemas: Record<string, unknown> };
};

const ROOT = join(import.meta.dir, "../..");
const TOKEN = "openapi-test-token-0123456789";

/** `METHOD /path` of every route an app registered, `:id` written `{id}`; middleware (`use`) left out. */
function registeredRoutes(app: { routes: Array<{ method: string; path: string }> }): {
  exact: Set<string>;
  anyMethod: Set<string>;
} {
  const exact = new Set<string>();
  const anyMethod = new Set<string>();
  for (const r of app.routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?/g, "{$1}");
    // `app.use` and `app.all` both register ALL: one on a wildcard is middleware; one on a
    // concrete path needs the path documented under some method.
    if (r.method === "ALL") {
      if (!path.includes("*")) anyMethod.add(path);
    } else exact.add(`${r.method} ${path}`);
  }
  return { exact, anyMethod };
}

function documentedRoutes(doc: Doc): Set<string> {
  const out = new Set<string>();
  for (const [path, methods] of Object.entries(doc.paths))
    for (const method of Object.keys(methods)) out.add(`${method.toUpperCase()} ${path}`);
  return out;
}

function expectCoverage(app: { routes: Array<{ method: string; path: string }> }, doc: Doc) {
  const { exact, anyMethod } = registeredRoutes(app);
  const documented = documentedRoutes(doc);
  const missing = [...exact].filter((r) => !documented.has(r));
  for (const path of anyMethod) if (!doc.paths[path]) missing.push(`ALL ${path}`);
  expect(missing, "routes the app serves but the document does not describe").toEqual([]);
  const stale = [...documented].filter((r) => !exact.has(r) && !anyMethod.has(r.split(" ")[1]!));
  expect(stale, "operations the document describes but the app does not serve").toEqual([]);
}

/** The request body schema of an operation in the document. */
function requestSchema(doc: Doc, method: string, path: string): Record<string, unknown> | undefined {
  const op = doc.paths[path]?.[method.toLowerCase()] as
    | { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } }
    | undefined;
  return op?.requestBody?.content["application/json"]?.schema;
}

/** A response body against the document's schema of that operation and status. */
function expectDocumented(doc: Doc, method: string, path: string, status: number, body: unknown) {
  const op = doc.paths[path]?.[method.toLowerCase()] as
    | { responses: Record<string, { content?: Record<string, { schema: Record<string, unknown> }> }> }
    | undefined;
  const content = op?.responses[String(status)]?.content;
  const schema = content?.["application/json"]?.schema ?? content?.["application/problem+json"]?.schema;
  expect(schema, `${method} ${path} ${status} is documented`).toBeDefined();
  expect(checkJsonSchema(body, schema!, doc)).toEqual([]);
}

/** Checks one request example against the route table's zod schema and the document's JSON Schema. */
function exampleProblems(spec: ApiSpec, doc: Doc, method: string, path: string, example: unknown): string[] {
  const op = spec.operations.find((o) => o.method === method.toLowerCase() && o.path === path);
  if (!op) return [`no operation ${method} ${path}`];
  if (!op.body) return [`${method} ${path} takes no body`];
  const parsed = op.body.schema.safeParse(example);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map((i) => `zod: ${i.path.join(".")}: ${i.message}`);
  const schema = requestSchema(doc, method, path);
  if (!schema) return [...problems, `${method} ${path} has no JSON request body in the document`];
  return [...problems, ...checkJsonSchema(example, schema, doc).map((p) => `json schema: ${p}`)];
}

interface DocExample {
  file: string;
  server: "edge" | "vps";
  method: string;
  path: string;
  body: string;
}

/** Every tagged example of README.md and docs/*.md. */
function docExamples(): DocExample[] {
  const files = [
    "README.md",
    ...readdirSync(join(ROOT, "docs"))
      .filter((f) => f.endsWith(".md"))
      .map((f) => `docs/${f}`),
  ];
  const out: DocExample[] = [];
  const tag =
    /^[ \t]*<!--\s*example:\s*(\S+)\s+(\S+)\s+(\S+)\s*-->\s*\n[ \t]*```(\w*)[ \t]*\n([\s\S]*?)\n[ \t]*```/gm;
  for (const file of files) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const tags = [...text.matchAll(/^[ \t]*<!--\s*example:/gm)].length;
    const found = [...text.matchAll(tag)];
    expect(found.length, `${file}: every example comment is followed by a fenced block`).toBe(tags);
    for (const m of found) {
      const [, server, method, rawPath, lang, block] = m as unknown as string[];
      expect(["edge", "vps"], `${file}: example server`).toContain(server!);
      let body = block!;
      if (lang === "sh" || lang === "bash" || lang === "console") {
        const data = [...block!.matchAll(/(?:-d|--data(?:-raw)?)\s+'([^']*)'/g)];
        expect(data.length, `${file}: ${method} ${rawPath}: one -d '…' in the curl example`).toBe(1);
        body = data[0]![1]!;
      }
      out.push({
        file,
        server: server as "edge" | "vps",
        method: method!,
        path: rawPath!.replace(/:([A-Za-z0-9_]+)/g, "{$1}"),
        body,
      });
    }
  }
  return out;
}

const edgeSpec = edgeApiSpec();
const vpsSpec = vpsApiSpec();
const edgeDoc = openApiDocument(edgeSpec) as unknown as Doc;
const vpsDoc = openApiDocument(vpsSpec) as unknown as Doc;

describe("edge API document", () => {
  let dir: string;
  let store: EdgeStore;
  let app: Hono;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "dionysus-openapi-"));
    store = createSqliteStore({ path: join(dir, "edge.db") });
    app = createEdgeApp({ store, apiToken: TOKEN, log: () => {} });
  });
  afterAll(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("documents every route the app registers, and only those", () => {
    expect(documentedRoutes(edgeDoc).size).toBeGreaterThan(10);
    expectCoverage(app, edgeDoc);
  });

  test("a route added to the app but not to the table is caught", () => {
    const grown = createEdgeApp({ store, apiToken: TOKEN, log: () => {} });
    grown.get("/v1/undocumented/:id", (c) => c.text("x"));
    expect(() => expectCoverage(grown, edgeDoc)).toThrow();
    const all = createEdgeApp({ store, apiToken: TOKEN, log: () => {} });
    all.all("/mcp-like", (c) => c.text("x"));
    expect(() => expectCoverage(all, edgeDoc)).toThrow();
  });

  test("/openapi.json and /docs need no token but pass the Host and Origin guards", async () => {
    const res = await app.request("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toContain("application/json");
    const served = (await res.json()) as { openapi: string };
    expect(served).toEqual(JSON.parse(JSON.stringify(edgeDoc)));
    expect(served.openapi).toBe("3.1.0");

    const page = await app.request("/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await page.text();
    for (const path of Object.keys(edgeDoc.paths)) expect(html).toContain(`<code>${path}</code>`);
    // Offline: nothing is loaded from elsewhere.
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\/(?!dionysus\.dev\/errors)/);

    for (const path of ["/openapi.json", "/docs"]) {
      const rebound = await app.request(path, { headers: { Host: "evil.example:8080" } });
      expect(rebound.status).toBe(403);
      const foreign = await app.request(path, { headers: { Origin: "https://evil.example" } });
      expect(foreign.status).toBe(403);
    }
    // The rest of the API still needs the token.
    expect((await app.request("/v1/memories")).status).toBe(401);
  });

  test("a browser on this machine opens /docs over a real socket, without a token", async () => {
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      // What a browser sends when the user types the address.
      const page = await fetch(`${base}/docs`, {
        headers: { "Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate" },
      });
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toContain("text/html");
      expect(await page.text()).toContain('<a href="openapi.json">');
      // The page's link to the document is same-origin.
      const doc = await fetch(`${base}/openapi.json`, {
        headers: { Origin: base, "Sec-Fetch-Site": "same-origin" },
      });
      expect(doc.status).toBe(200);
      expect(((await doc.json()) as { openapi: string }).openapi).toBe("3.1.0");
      const api = await fetch(`${base}/v1/conflicts`, { headers: { Origin: base } });
      expect(api.status).toBe(401);
    } finally {
      server.stop(true);
    }
  });

  test("the documented query parameters of GET /v1/memories are the ones the route reads", async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const create = (body: object) =>
      app.request("/v1/memories", {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    expect(
      (await create({ content: "in scope", scope: "work/x", tags: ["a", "b"], metadata: { k: "v" } })).status,
    ).toBe(201);
    expect((await create({ content: "elsewhere", scope: "home", tags: ["a"] })).status).toBe(201);
    const values: Record<string, string[]> = {
      recent: ["5"],
      scope: ["work/*"],
      tag: ["a", "b"],
      kind: ["episodic"],
      source: ["api"],
      since: ["7d"],
      until: ["2100-01-01T00:00:00Z"],
      meta: ["k=v"],
    };
    const params = (
      edgeDoc.paths["/v1/memories"]!.get!.parameters as Array<{ name: string; in: string }>
    ).filter((p) => p.in === "query");
    expect(params.map((p) => p.name).sort()).toEqual(Object.keys(values).sort());
    const query = new URLSearchParams();
    for (const p of params) for (const v of values[p.name]!) query.append(p.name, v);
    const res = await app.request(`/v1/memories?${query}`, { headers: auth });
    expect(res.status).toBe(200);
    const { memories } = (await res.json()) as { memories: Array<{ content: string }> };
    // Every parameter took effect: only the memory in scope, with both tags and the metadata.
    expect(memories.map((m) => m.content)).toEqual(["in scope"]);
  });

  test("real answers match the documented response schemas", async () => {
    const auth = { Authorization: `Bearer ${TOKEN}` };
    const json = { ...auth, "Content-Type": "application/json" };
    const health = await app.request("/health");
    expectDocumented(edgeDoc, "GET", "/health", 200, await health.json());
    const created = await app.request("/v1/memories", {
      method: "POST",
      headers: json,
      body: JSON.stringify({
        content: "Coffee with Ana at the museum",
        tags: ["ana"],
        metadata: { where: "Lisbon" },
      }),
    });
    expect(created.status).toBe(201);
    const memory = (await created.json()) as Record<string, unknown>;
    expectDocumented(edgeDoc, "POST", "/v1/memories", 201, memory);
    const list = await app.request("/v1/memories?recent=5", { headers: auth });
    expectDocumented(edgeDoc, "GET", "/v1/memories", 200, await list.json());
    const recall = await app.request("/v1/recall", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ query: "museum" }),
    });
    const hits = (await recall.json()) as { results: unknown[] };
    expect(hits.results.length).toBe(1);
    expectDocumented(edgeDoc, "POST", "/v1/recall", 200, hits);
    const missing = await app.request("/v1/memories/0193aaaa-0000-7000-8000-000000000000", { headers: auth });
    expectDocumented(edgeDoc, "GET", "/v1/memories/{id}", 404, await missing.json());
    const bad = await app.request("/v1/recall", { method: "POST", headers: json, body: "{}" });
    expectDocumented(edgeDoc, "POST", "/v1/recall", 400, await bad.json());
    // The checker does reject a wrong answer.
    expect(
      checkJsonSchema({ ...memory, kind: "dream" }, { $ref: "#/components/schemas/LocalMemory" }, edgeDoc),
    ).not.toEqual([]);
  });
});

describe("VPS API document", () => {
  let backend: TestBackend;
  let t: TestApp;

  beforeAll(async () => {
    backend = await openTestBackend();
    t = await makeTestApp(backend);
  });
  afterAll(async () => {
    await t.stop();
    await backend.close();
  });

  test("documents every route the app registers (admin API included), and only those", () => {
    expect(documentedRoutes(vpsDoc).size).toBeGreaterThan(25);
    expectCoverage(t.app, vpsDoc);
  });

  test("/openapi.json and /docs are public", async () => {
    const res = await t.req("/openapi.json");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(vpsDoc)));
    const page = await t.req("/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await page.text();
    for (const path of Object.keys(vpsDoc.paths)) expect(html).toContain(`<code>${path}</code>`);
    expect(html).not.toMatch(/<script|<link|src=/);
  });

  test("real answers match the documented response schemas", async () => {
    const s = await signIn(t);
    expectDocumented(vpsDoc, "GET", "/health", 200, await (await t.req("/health")).json());
    const identity = await t.req("/v1/identity", { headers: s.auth });
    expectDocumented(vpsDoc, "GET", "/v1/identity", 200, await identity.json());
    const pull = await t.req("/v1/sync/pull", { headers: s.auth });
    expectDocumented(vpsDoc, "GET", "/v1/sync/pull", 200, await pull.json());
    const devices = await t.req("/v1/devices", { headers: s.auth });
    expectDocumented(vpsDoc, "GET", "/v1/devices", 200, await devices.json());
    const unauthorized = await t.req("/v1/devices");
    expectDocumented(vpsDoc, "GET", "/v1/devices", 401, await unauthorized.json());
    const badGrant = await t.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ grant_type: "refresh_token", refresh_token: "dnr_nope" }),
    });
    expect(badGrant.status).toBe(400);
    expectDocumented(vpsDoc, "POST", "/v1/auth/token", 400, await badGrant.json());
  });
});

describe("document structure", () => {
  /** Every `$ref` string anywhere in a value. */
  const refs = (v: unknown): string[] =>
    Array.isArray(v)
      ? v.flatMap(refs)
      : v && typeof v === "object"
        ? Object.entries(v).flatMap(([k, x]) => (k === "$ref" && typeof x === "string" ? [x] : refs(x)))
        : [];

  for (const [name, doc] of [
    ["edge", edgeDoc],
    ["vps", vpsDoc],
  ] as const)
    test(`${name}: every $ref resolves, operation ids are unique, path parameters are declared`, () => {
      const all = refs(doc);
      expect(all.length).toBeGreaterThan(20);
      for (const ref of all)
        expect(doc.components.schemas[ref.replace("#/components/schemas/", "")], ref).toBeDefined();
      const ids: string[] = [];
      for (const [path, methods] of Object.entries(doc.paths))
        for (const op of Object.values(methods)) {
          ids.push(op.operationId as string);
          const declared = ((op.parameters ?? []) as Array<{ name: string; in: string }>)
            .filter((p) => p.in === "path")
            .map((p) => p.name);
          expect(declared, path).toEqual([...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!));
          expect(Object.keys(op.responses as object).length, path).toBeGreaterThan(0);
        }
      expect(new Set(ids).size).toBe(ids.length);
    });
});

test("parameters and their .describe() texts reach the document", () => {
  const events = vpsDoc.paths["/v1/events"]!.get!.parameters as Array<Record<string, unknown>>;
  const header = events.find((p) => p.in === "header" && p.name === "Last-Event-ID");
  expect(header?.description).toContain("seq");
  const byId = edgeDoc.paths["/v1/memories/{id}"]!.get!.parameters as Array<Record<string, unknown>>;
  expect(byId).toEqual([
    {
      name: "id",
      in: "path",
      required: true,
      description: "The memory's id (a UUID).",
      schema: { type: "string" },
    },
  ]);
});

describe("request examples", () => {
  test("every example of the route tables validates", () => {
    let count = 0;
    for (const [spec, doc] of [
      [edgeSpec, edgeDoc],
      [vpsSpec, vpsDoc],
    ] as const)
      for (const op of spec.operations)
        if (op.body?.example !== undefined) {
          count++;
          expect(
            exampleProblems(spec, doc, op.method, op.path, op.body.example),
            `${op.method} ${op.path}`,
          ).toEqual([]);
        }
    expect(count).toBeGreaterThan(10);
  });

  test("every example in README.md and docs/ validates against its operation", () => {
    const examples = docExamples();
    expect(examples.length).toBeGreaterThanOrEqual(8);
    for (const ex of examples) {
      const where = `${ex.file}: ${ex.server} ${ex.method} ${ex.path}`;
      let body: unknown;
      expect(() => {
        body = JSON.parse(ex.body);
      }, `${where}: the example is JSON`).not.toThrow();
      const [spec, doc] = ex.server === "edge" ? [edgeSpec, edgeDoc] : [vpsSpec, vpsDoc];
      expect(exampleProblems(spec, doc, ex.method, ex.path, body), where).toEqual([]);
    }
  });

  test("a wrong example is caught by both checks", () => {
    const problems = exampleProblems(edgeSpec, edgeDoc, "POST", "/v1/recall", {
      query: "",
      limit: 0,
      mode: "fuzzy",
    });
    expect(problems.filter((p) => p.startsWith("zod:")).length).toBeGreaterThan(0);
    expect(problems.filter((p) => p.startsWith("json schema:")).length).toBe(3);
    expect(exampleProblems(vpsSpec, vpsDoc, "POST", "/v1/nowhere", {})).toEqual([
      "no operation POST /v1/nowhere",
    ]);
  });
});
