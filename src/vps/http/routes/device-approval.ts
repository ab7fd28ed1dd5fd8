/**
 * The verification page at `/device` (RFC 8628): `GET` shows the form (with the device a code
 * names), `POST` signs the user in and approves or denies the device. Answers are HTML pages (see
 * ../device-page.ts), never JSON. Failed sign-ins are budgeted per name, address and pair (../sign-in-budget.ts).
 */
import { type Context, Hono } from "hono";
import { isDionysusError } from "../../../core/errors.ts";
import { USER_NAME_RE } from "../../auth/service.ts";
import { DEVICE_PAGE_CSP, type DevicePageState, renderDevicePage } from "../device-page.ts";
import type { AppEnv, RouteContext } from "../middleware.ts";
import type { SignInBudget } from "../sign-in-budget.ts";

const PAGE_HEADERS = {
  "Content-Security-Policy": DEVICE_PAGE_CSP,
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
  "Referrer-Policy": "no-referrer",
};

const UNKNOWN_CODE = "This code is unknown, already used, or expired.";

/** `signInFailures` is the server's one budget of failed sign-ins (shared with the status page). */
export function deviceApprovalRoutes(
  { vps, byIp, clientIp, publicBase }: RouteContext,
  signInFailures: SignInBudget,
): Hono<AppEnv> {
  const { auth } = vps;
  const page = (c: Context<AppEnv>, state: DevicePageState, status = 200) =>
    c.html(renderDevicePage(state), status as 200, PAGE_HEADERS);
  const app = new Hono<AppEnv>();

  app.get("/device", byIp, async (c) => {
    const code = c.req.query("code")?.slice(0, 20);
    const pending = code ? await auth.pendingUserCode(code) : undefined;
    return page(c, {
      ...(code ? { code } : {}),
      ...(pending ? { device: pending } : {}),
      ...(code && !pending ? { message: { text: UNKNOWN_CODE, ok: false } } : {}),
    });
  });

  app.post("/device", byIp, async (c) => {
    const origin = c.req.header("origin");
    if (origin && origin !== new URL(c.req.url).origin && origin !== publicBase())
      return page(c, { message: { text: "This form must be sent from this site.", ok: false } }, 403);
    let form: Record<string, unknown>;
    try {
      form = await c.req.parseBody();
    } catch {
      return page(c, { message: { text: "Send the form from this page.", ok: false } }, 400);
    }
    const str = (k: string) => (typeof form[k] === "string" ? (form[k] as string) : "");
    const code = str("user_code").slice(0, 20);
    const username = str("username").slice(0, 64);
    const password = str("password").slice(0, 1024);
    const act = str("action");
    if (!code || (act !== "approve" && act !== "deny"))
      return page(
        c,
        { code, username, message: { text: "Enter the code and choose Approve or Deny.", ok: false } },
        400,
      );
    const pending = await auth.pendingUserCode(code);
    if (!pending) return page(c, { code, username, message: { text: UNKNOWN_CODE, ok: false } }, 400);
    if (act === "deny") {
      await auth.decideUserCode(code, "deny");
      return page(c, { done: true, message: { text: "Denied. The device was not connected.", ok: true } });
    }
    // One failure is reserved before the (slow) password check and refunded when it succeeds, so
    // concurrent guesses cannot all be checked before the first failure counts.
    const reservation = await signInFailures.reserve(username, clientIp(c) ?? "unknown");
    if (!reservation.ok)
      return c.html(
        renderDevicePage({
          code,
          username,
          message: {
            text: `Too many failed sign-ins. Wait ${Math.ceil(reservation.resetS / 60)} minutes and try again.`,
            ok: false,
          },
        }),
        429,
        { ...PAGE_HEADERS, "Retry-After": String(reservation.resetS) },
      );
    // A name that cannot exist is never looked up (the check costs the same either way).
    const user =
      username && password
        ? await auth.verifyPassword(USER_NAME_RE.test(username) ? username : "", password)
        : undefined;
    if (user) reservation.refund();
    if (!user) {
      return page(
        c,
        { code, username, device: pending, message: { text: "Wrong user name or password.", ok: false } },
        401,
      );
    }
    const room = await auth.deviceRoomFor(user.id, pending.device_id);
    if (!room.ok)
      return page(c, { code, username, device: pending, message: { text: room.reason, ok: false } }, 409);
    try {
      await auth.decideUserCode(code, "approve", user.id);
    } catch (err) {
      if (isDionysusError(err) && err.code === "not_found")
        return page(c, { message: { text: UNKNOWN_CODE, ok: false } }, 400);
      throw err;
    }
    return page(c, {
      done: true,
      message: {
        text: `Approved. ${pending.device_name ?? pending.device_id} is now connected; return to it.`,
        ok: true,
      },
    });
  });

  return app;
}
