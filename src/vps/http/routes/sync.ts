/**
 * Sync: `POST /v1/sync/push` (a batch of the device's writes), `GET /v1/sync/pull` (the change
 * feed after a cursor) and `GET /v1/conflicts` (the conflict log). See src/vps/sync/service.ts.
 */
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { DionysusError } from "../../../core/errors.ts";
import { ConflictsQuery, PullQuery, PushRequest } from "../../../core/protocol/sync.ts";
import {
  type AppEnv,
  invalidInput,
  jsonBody,
  type RouteContext,
  requireUtf8,
  validQuery,
} from "../middleware.ts";

export function syncRoutes({ vps, requireAuth }: RouteContext): Hono<AppEnv> {
  const { config, sync, webhooks } = vps;
  const app = new Hono<AppEnv>();

  app.post(
    "/v1/sync/push",
    requireAuth,
    // Push has its own (larger) body limit, applied after authentication so that no one without
    // a token can make the server read `max_push_bytes`.
    bodyLimit({
      maxSize: config.max_push_bytes,
      onError: () => {
        throw new DionysusError("payload_too_large", `the push body is over ${config.max_push_bytes} bytes`, {
          details: { limit_bytes: config.max_push_bytes },
        });
      },
    }),
    async (c, next) => {
      await requireUtf8(c, false);
      await next();
    },
    jsonBody,
    zValidator("json", PushRequest, (result) => {
      // Too many mutations is a 413, whether or not the batch is otherwise valid.
      const mutations = (result.data as { mutations?: unknown } | null)?.mutations;
      if (Array.isArray(mutations) && mutations.length > config.max_push_mutations)
        throw new DionysusError(
          "payload_too_large",
          `${mutations.length} mutations in one push; the limit is ${config.max_push_mutations}`,
          { details: { limit_mutations: config.max_push_mutations } },
        );
      invalidInput(result);
    }),
    async (c) => {
      const p = c.get("principal");
      const out = await sync.push(p, c.req.valid("json").mutations);
      if (out.seq !== undefined) webhooks.dispatch(p.user_id, out.seq);
      return c.json(out.response);
    },
  );

  app.get("/v1/sync/pull", requireAuth, validQuery(PullQuery), async (c) =>
    c.json(await sync.pull(c.get("principal").user_id, c.req.valid("query"))),
  );

  app.get("/v1/conflicts", requireAuth, validQuery(ConflictsQuery, { dropEmpty: true }), async (c) => {
    const { limit, memory_id } = c.req.valid("query");
    return c.json({
      conflicts: await sync.conflicts(c.get("principal").user_id, {
        limit,
        ...(memory_id ? { memory_id } : {}),
      }),
    });
  });

  return app;
}
