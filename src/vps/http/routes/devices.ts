/** The caller's own account: `GET /v1/identity`, its devices, and revoking one of them. */
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import { z } from "zod";
import { DeviceId } from "../../../core/protocol/auth.ts";
import { type AppEnv, invalidParam, type RouteContext } from "../middleware.ts";

export function deviceRoutes({ vps, requireAuth }: RouteContext): Hono<AppEnv> {
  const { auth, sync } = vps;
  const app = new Hono<AppEnv>();

  app.get("/v1/identity", requireAuth, async (c) => c.json(await sync.identity(c.get("principal"))));

  app.get("/v1/devices", requireAuth, async (c) =>
    c.json({ devices: await auth.listDevices(c.get("principal").user_id) }),
  );

  app.delete(
    "/v1/devices/:id",
    requireAuth,
    zValidator("param", z.object({ id: DeviceId }), invalidParam),
    async (c) => c.json(await auth.revokeDevice(c.get("principal").user_id, c.req.valid("param").id)),
  );

  return app;
}
