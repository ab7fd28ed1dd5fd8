/**
 * The heavy queries, answered on the VPS over all of a user's memories: `POST /v1/search`,
 * `POST /v1/graph/query`, `POST /v1/ask` (an NDJSON stream), `POST /v1/consolidate` (a job) and
 * `GET /v1/jobs/:id`. See src/vps/heavy.ts for what answers them.
 */
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { stream } from "hono/streaming";
import { DionysusError } from "../../../core/errors.ts";
import { AskRequest, GraphQueryRequest, SearchRequest } from "../../../core/protocol/heavy.ts";
import { isUuid } from "../../../core/uuid.ts";
import { type AppEnv, invalidInput, jsonBody, type RouteContext } from "../middleware.ts";

export function queryRoutes({ vps, requireAuth }: RouteContext): Hono<AppEnv> {
  const { heavy } = vps;
  const app = new Hono<AppEnv>();

  app.post("/v1/search", requireAuth, jsonBody, zValidator("json", SearchRequest, invalidInput), async (c) =>
    c.json(await heavy.search.search(c.get("principal").user_id, c.req.valid("json"))),
  );

  app.post(
    "/v1/graph/query",
    requireAuth,
    jsonBody,
    zValidator("json", GraphQueryRequest, invalidInput),
    async (c) => c.json(await heavy.graph.query(c.get("principal").user_id, c.req.valid("json"))),
  );

  app.post("/v1/consolidate", requireAuth, async (c) => {
    const answer = await heavy.queue.startConsolidation(c.get("principal").user_id);
    if (answer.started) heavy.worker.wake();
    return c.json(answer, 202);
  });

  app.get("/v1/jobs/:id", requireAuth, async (c) => {
    const id = c.req.param("id");
    const job = isUuid(id) ? await heavy.queue.get(c.get("principal").user_id, id) : undefined;
    if (!job) throw new DionysusError("not_found", `no job ${id}`);
    return c.json({ job });
  });

  app.post("/v1/ask", requireAuth, jsonBody, zValidator("json", AskRequest, invalidInput), async (c) => {
    const events = await heavy.ask.prepare(c.get("principal").user_id, c.req.valid("json"));
    // A model may think for a while before its first word: the stream is not idle.
    c.env?.timeout?.(c.req.raw, 0);
    c.header("Content-Type", "application/x-ndjson; charset=utf-8");
    c.header("Cache-Control", "no-store");
    c.header("X-Accel-Buffering", "no");
    return stream(c, async (out) => {
      out.onAbort(() => {
        void events.return(undefined);
      });
      for await (const ev of events) {
        if (out.aborted) break;
        await out.write(`${JSON.stringify(ev)}\n`);
      }
    });
  });

  return app;
}
