/** Webhooks of the caller's user: register, list, remove. See src/vps/push/webhooks.ts. */
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { z } from "zod";
import { WebhookId, WebhookRequest } from "../../../core/protocol/auth.ts";
import { type AppEnv, invalidInput, invalidParam, jsonBody, type RouteContext } from "../middleware.ts";

export function webhookRoutes({ vps, requireAuth }: RouteContext): Hono<AppEnv> {
  const { webhooks } = vps;
  const app = new Hono<AppEnv>();

  app.post(
    "/v1/webhooks",
    requireAuth,
    jsonBody,
    zValidator("json", WebhookRequest, invalidInput),
    async (c) => c.json(await webhooks.register(c.get("principal"), c.req.valid("json")), 201),
  );

  app.get("/v1/webhooks", requireAuth, async (c) =>
    c.json({ webhooks: await webhooks.list(c.get("principal")) }),
  );

  app.delete(
    "/v1/webhooks/:id",
    requireAuth,
    zValidator("param", z.object({ id: WebhookId }), invalidParam),
    async (c) => {
      await webhooks.remove(c.get("principal"), c.req.valid("param").id);
      return c.body(null, 204);
    },
  );

  return app;
}
