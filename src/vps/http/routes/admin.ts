/**
 * The loopback-only administration API under `/admin/*`, used by `dionysus vps ...` while a
 * server holds the database (PGlite allows one process). It exists only with an admin token.
 */
import { type Context, Hono } from "hono";
import { DionysusError } from "../../../core/errors.ts";
import { type AppEnv, constantTimeEqual, type RouteContext, readJson } from "../middleware.ts";

const LOOPBACK = new Set(["127.0.0.1", "::1", "::ffff:127.0.0.1"]);

/** A string field of a body: absent when missing, not a string, or empty; NUL is refused. */
function field(b: unknown, k: string): string | undefined {
  const v = (b as Record<string, unknown> | null)?.[k];
  if (typeof v === "string" && v.includes("\u0000"))
    throw new DionysusError("invalid_input", `${k} must not contain NUL`);
  return typeof v === "string" && v !== "" ? v : undefined;
}

function queryField(c: Context<AppEnv>, k: string): string {
  const v = field({ [k]: c.req.query(k) }, k);
  if (!v) throw new DionysusError("invalid_input", `${k} is required`);
  return v;
}

export function adminRoutes({ vps, clientIp }: RouteContext, adminToken: string): Hono<AppEnv> {
  const { admin } = vps;
  const app = new Hono<AppEnv>();

  app.use("/admin/*", async (c, next) => {
    const ip = clientIp(c);
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header("authorization") ?? "");
    // A request a proxy forwarded is not a local one, whatever address the proxy has.
    const forwarded =
      c.req.header("x-forwarded-for") !== undefined || c.req.header("forwarded") !== undefined;
    if (!ip || !LOOPBACK.has(ip) || forwarded)
      throw new DionysusError("forbidden", "the admin API answers loopback only");
    if (!m || !constantTimeEqual(m[1]!, adminToken))
      throw new DionysusError("unauthorized", "wrong admin token");
    await next();
  });

  app.post("/admin/users", async (c) => {
    const b = await readJson(c);
    const name = field(b, "name");
    if (!name) throw new DionysusError("invalid_input", "name is required");
    return c.json(await admin.addUser(name, field(b, "password")), 201);
  });
  app.post("/admin/keys", async (c) => {
    const user = field(await readJson(c), "user");
    if (!user) throw new DionysusError("invalid_input", "user is required");
    return c.json(await admin.createKey(user), 201);
  });
  app.get("/admin/keys", async (c) => c.json({ keys: await admin.listKeys(queryField(c, "user")) }));
  app.post("/admin/keys/revoke", async (c) => {
    const b = await readJson(c);
    const key = field(b, "key");
    if (!key) throw new DionysusError("invalid_input", "key is required");
    return c.json(await admin.revokeKey(field(b, "user"), key));
  });
  app.post("/admin/users/delete", async (c) => {
    const user = field(await readJson(c), "user");
    if (!user) throw new DionysusError("invalid_input", "user is required");
    return c.json(await admin.deleteUser(user));
  });
  app.post("/admin/users/password", async (c) => {
    const b = await readJson(c);
    const user = field(b, "user");
    if (!user) throw new DionysusError("invalid_input", "user is required");
    return c.json(await admin.setPassword(user, field(b, "password")));
  });
  app.get("/admin/devices", async (c) => c.json({ devices: await admin.devices(queryField(c, "user")) }));
  app.post("/admin/revoke", async (c) => {
    const b = await readJson(c);
    const device = field(b, "device");
    if (!device) throw new DionysusError("invalid_input", "device is required");
    return c.json(await admin.revoke(device, field(b, "user")));
  });

  return app;
}
