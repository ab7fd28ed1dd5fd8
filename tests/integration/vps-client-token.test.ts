/**
 * The edge's VPS client against a real VPS app (in this process, on a real socket): a busy token
 * endpoint (429) is a reason to wait, never a refused sign-in, while a real refusal stays one.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { DionysusError } from "../../src/core/errors.ts";
import { VpsClient } from "../../src/edge/sync/vps-client.ts";
import { makeTestApp, openTestBackend, signIn, type TestApp, type TestBackend } from "../helpers/vps-app.ts";

let backend: TestBackend;
let t: TestApp;
let server: ReturnType<typeof Bun.serve>;

beforeAll(async () => {
  backend = await openTestBackend();
  t = await makeTestApp(backend, { rate_limit_per_min: 3 });
  server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => t.app.fetch(req) });
});
afterAll(async () => {
  await server?.stop(true);
  await t?.stop();
  await backend?.close();
});

test("a 429 from the token endpoint throws rate_limited; a refused token is an OAuth answer", async () => {
  const { tokens } = await signIn(t, "client-dev");
  const client = new VpsClient({ baseUrl: `http://127.0.0.1:${server.port}` });
  const refused = await client.refreshToken("dnr_not-a-token");
  expect(refused).toMatchObject({ ok: false, error: { error: "invalid_grant" } });
  let caught: unknown;
  for (let i = 0; i < 10 && caught === undefined; i++) {
    try {
      await client.refreshToken(tokens.refresh_token.replace(/.$/, "x"));
    } catch (err) {
      caught = err;
    }
  }
  expect(caught).toBeInstanceOf(DionysusError);
  expect((caught as DionysusError).code).toBe("rate_limited");
});
