/**
 * How the VPS app answers requests its validators refuse: the exact problem+json (or OAuth)
 * answers of JSON bodies, query strings and path parameters, and the push limits checked before
 * the batch's own validity.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { z } from "zod";
import { describeIssues } from "../../../src/core/errors.ts";
import { API_KEY_GRANT, DeviceId, TokenRequest } from "../../../src/core/protocol/auth.ts";
import { SearchRequest } from "../../../src/core/protocol/heavy.ts";
import { PullQuery } from "../../../src/core/protocol/sync.ts";
import {
  makeTestApp,
  openTestBackend,
  signIn,
  type TestApp,
  type TestBackend,
} from "../../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;
let json: Record<string, string>;

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend, { max_push_mutations: 2 });
  json = (await signIn(t)).json;
});
afterAll(async () => {
  await t?.stop();
  await backend?.close();
});

/** What zod says about `value` under `schema`, as the app words it. */
function issuesOf(schema: z.ZodType, value: unknown) {
  const error = schema.safeParse(value).error;
  if (!error) throw new Error("the value is valid");
  return describeIssues(error.issues);
}

async function problem(res: Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  return (await res.json()) as { code: string; detail: string };
}

describe("JSON bodies", () => {
  test("a body that does not parse is a 400 invalid_input", async () => {
    const res = await t.req("/v1/search", { method: "POST", headers: json, body: "{not json" });
    const p = await problem(res, 400);
    expect(p).toMatchObject({ code: "invalid_input", detail: "the body is not valid JSON" });
  });

  test("an invalid body is a 400 naming what is wrong", async () => {
    const res = await t.req("/v1/search", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ limit: 0 }),
    });
    const p = await problem(res, 400);
    expect(p.code).toBe("invalid_input");
    expect(p.detail).toBe(issuesOf(SearchRequest, { limit: 0 }));
  });

  test("a body not sent as JSON is a 415", async () => {
    const { authorization } = json as { authorization: string };
    const res = await t.req("/v1/search", {
      method: "POST",
      headers: { authorization, "content-type": "text/plain" },
      body: JSON.stringify({ query: "x" }),
    });
    expect((await problem(res, 415)).code).toBe("unsupported_media_type");
  });
});

describe("push limits", () => {
  test("too many mutations is a 413 before the batch's own validity is looked at", async () => {
    const res = await t.req("/v1/sync/push", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ mutations: [1, 2, 3] }),
    });
    const p = await problem(res, 413);
    expect(p).toMatchObject({
      code: "payload_too_large",
      detail: "3 mutations in one push; the limit is 2",
      limit_mutations: 2,
    });
  });

  test("a batch that is not a list of mutations is a 400", async () => {
    const res = await t.req("/v1/sync/push", {
      method: "POST",
      headers: json,
      body: JSON.stringify({ mutations: "x" }),
    });
    expect((await problem(res, 400)).code).toBe("invalid_input");
  });
});

describe("query strings and path parameters", () => {
  test("a bad query parameter is a 400 with zod's words", async () => {
    const p = await problem(await t.req("/v1/sync/pull?limit=0", { headers: json }), 400);
    expect(p.detail).toBe(issuesOf(PullQuery, { limit: "0" }));
  });

  test("a repeated parameter counts once (the first); an empty one counts as absent", async () => {
    expect((await t.req("/v1/conflicts?limit=5&limit=x", { headers: json })).status).toBe(200);
    expect((await t.req("/v1/conflicts?memory_id=&limit=5", { headers: json })).status).toBe(200);
    const p = await problem(await t.req("/v1/conflicts?limit=x&limit=5", { headers: json }), 400);
    expect(p.detail).toBe("limit: limit must be 1..1000");
  });

  test("a bad path parameter is a 400 whose message names no path", async () => {
    const bad = "x".repeat(300);
    const p = await problem(await t.req(`/v1/devices/${bad}`, { method: "DELETE", headers: json }), 400);
    expect(p.detail).toBe(issuesOf(DeviceId, bad));
    expect(p.detail.startsWith("id:")).toBe(false);
  });
});

describe("OAuth endpoints", () => {
  test("an invalid token request is an OAuth invalid_request, not problem+json", async () => {
    const body = { grant_type: API_KEY_GRANT, device_id: "dev-b" };
    const res = await t.req("/v1/auth/token", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toEqual({
      error: "invalid_request",
      error_description: issuesOf(TokenRequest, body),
    });
  });
});
