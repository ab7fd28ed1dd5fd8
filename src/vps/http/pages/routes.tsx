/**
 * The VPS page's routes: `GET /` (sign-in form or the user's dashboard), `POST /signin` (the
 * account's password, budgeted like `/device`), `POST /signout`, `POST /devices/:id/revoke`, and
 * `/assets/vps.css`. The session is a cookie (HttpOnly, SameSite=Strict, see ./sessions.ts); every
 * POST must carry this site's Origin (CSRF), and every query is scoped to the signed-in user.
 */
import { type Context, Hono } from "hono";
import { DionysusError } from "../../../core/errors.ts";
import { DeviceId } from "../../../core/protocol/auth.ts";
import { VERSION } from "../../../core/version.ts";
import { USER_NAME_RE } from "../../auth/service.ts";
import type { AppEnv, RouteContext } from "../middleware.ts";
import type { SignInBudget } from "../sign-in-budget.ts";
import { userDevices, userJobs, userMemoryCount } from "./queries.ts";
import { VPS_SESSION_COOKIE, type WebSession, WebSessions } from "./sessions.ts";
import { Dashboard, SignInPage } from "./status-page.tsx";
import { VPS_CSS } from "./style.ts";

/** No script; styles and form posts from this origin only; never framed. */
export const VPS_PAGE_CSP =
  "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGE_HEADERS = {
  "Content-Security-Policy": VPS_PAGE_CSP,
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
  // Not no-referrer: with it a browser sends `Origin: null` on the page's own form posts.
  "Referrer-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

export interface StatusPageOptions {
  sessions?: WebSessions;
}

function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** `failures` is the server's one budget of failed sign-ins (shared with `/device`). */
export function statusPageRoutes(
  { vps, byIp, clientIp, publicBase }: RouteContext,
  failures: SignInBudget,
  opts: StatusPageOptions = {},
): Hono<AppEnv> {
  const { auth, database } = vps;
  const sessions = opts.sessions ?? new WebSessions();
  const app = new Hono<AppEnv>();

  const secure = (c: Context<AppEnv>) =>
    new URL(c.req.url).protocol === "https:" || publicBase().startsWith("https:");
  const session = (c: Context<AppEnv>): WebSession | undefined =>
    sessions.get(readCookie(c.req.header("cookie"), VPS_SESSION_COOKIE));
  /** Browsers send Origin on every POST; it must be this site (as reached, or its public_url). */
  const sameOrigin = (c: Context<AppEnv>) => {
    const origin = c.req.header("origin");
    if (origin === undefined || (origin !== new URL(c.req.url).origin && origin !== publicBase()))
      throw new DionysusError("forbidden", "this form must be sent from this site's own page");
  };
  const form = async (c: Context<AppEnv>): Promise<Record<string, string>> => {
    let body: Record<string, unknown>;
    try {
      body = await c.req.parseBody();
    } catch {
      throw new DionysusError("invalid_input", "send the form from this site's page");
    }
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === "string") out[k] = v;
    return out;
  };
  const signIn = (c: Context<AppEnv>, status: number, username?: string, message?: string) =>
    c.html(
      `<!doctype html>${<SignInPage version={VERSION} {...(username ? { username } : {})} {...(message ? { message } : {})} />}`,
      status as 200,
      PAGE_HEADERS,
    );

  app.get("/assets/vps.css", (c) =>
    c.body(VPS_CSS, 200, {
      "Content-Type": "text/css; charset=utf-8",
      "Cache-Control": "no-cache",
      "X-Content-Type-Options": "nosniff",
    }),
  );

  app.get("/", byIp, async (c) => {
    const s = session(c);
    if (!s) return signIn(c, 200);
    const [devices, memories, jobs] = await Promise.all([
      userDevices(database.db, s.userId),
      userMemoryCount(database.db, s.userId),
      userJobs(database.db, s.userId),
    ]);
    const revoked = c.req.query("revoked");
    const page = (
      <Dashboard
        p={{
          version: VERSION,
          userName: s.userName,
          memories,
          devices,
          jobs,
          ...(revoked && devices.some((d) => d.device_id === revoked)
            ? { notice: `Device ${revoked} was revoked.` }
            : {}),
        }}
      />
    );
    return c.html(`<!doctype html>${page}`, 200, PAGE_HEADERS);
  });

  app.post("/signin", byIp, async (c) => {
    sameOrigin(c);
    const f = await form(c);
    const username = (f.username ?? "").slice(0, 64);
    const password = (f.password ?? "").slice(0, 1024);
    // One failure is reserved before the (slow) password check and refunded when it succeeds.
    const reservation = await failures.reserve(username, clientIp(c) ?? "unknown");
    if (!reservation.ok) {
      c.header("Retry-After", String(reservation.resetS));
      return signIn(
        c,
        429,
        username,
        `Too many failed sign-ins. Wait ${Math.ceil(reservation.resetS / 60)} minutes and try again.`,
      );
    }
    const user =
      username && password
        ? await auth.verifyPassword(USER_NAME_RE.test(username) ? username : "", password)
        : undefined;
    if (!user) return signIn(c, 401, username, "Wrong user name or password.");
    reservation.refund();
    c.header("Set-Cookie", sessions.cookie(sessions.create(user.id, user.name), secure(c)));
    return c.redirect("/", 303);
  });

  app.post("/signout", async (c) => {
    sameOrigin(c);
    sessions.end(readCookie(c.req.header("cookie"), VPS_SESSION_COOKIE));
    c.header("Set-Cookie", WebSessions.clearCookie(secure(c)));
    return c.redirect("/", 303);
  });

  app.post("/devices/:id/revoke", async (c) => {
    sameOrigin(c);
    const s = session(c);
    if (!s) throw new DionysusError("unauthorized", "sign in on the page first");
    const id = DeviceId.safeParse(c.req.param("id"));
    if (!id.success) throw new DionysusError("invalid_input", "not a device id");
    const d = await auth.revokeDevice(s.userId, id.data);
    return c.redirect(`/?revoked=${encodeURIComponent(d.device_id)}`, 303);
  });

  return app;
}
