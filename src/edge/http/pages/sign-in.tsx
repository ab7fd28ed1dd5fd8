/**
 * The way a browser gets its session (see ../browser-session.ts): `GET /session?ticket=…` (the
 * ticket `dionysus open` got from `POST /v1/session/ticket`), and the sign-in page a browser sees
 * at `/` without a session, whose form posts the API token to `POST /session`. Both only over
 * loopback; the form only from the daemon's own origin. A refusal is problem+json, or the sign-in
 * page with the reason when a browser navigates (Accept: text/html); neither sets a cookie.
 */
import { type Context, Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { FC } from "hono/jsx";
import { DionysusError } from "../../../core/errors.ts";
import { VERSION } from "../../../core/version.ts";
import { secretMatcher } from "../../api-token.ts";
import { type BrowserSessions, TICKET_TTL_MS } from "../browser-session.ts";
import { isLoopbackAddress, sessionCookie } from "../guard.ts";
import { PAGE_HEADERS } from "./routes.tsx";
import { Layout } from "./status-page.tsx";

export interface SignInDeps {
  sessions: BrowserSessions;
  /** The API token (`null`: an app never served on a socket; the form then takes nothing). */
  apiToken: string | null;
  /** Where the token is, as the page tells the user (`<data_dir>/api-token`). */
  tokenPath: string;
}

/** What the Bun server passes as `c.env`, when there is one. */
interface ServerLike {
  requestIP?(req: Request): { address: string } | null;
}

export const SignInPage: FC<{ version: string; tokenPath: string; message?: string }> = (p) => (
  <Layout title="Dionysus: sign in">
    <form class="signin" method="post" action="/session">
      <h1>Dionysus</h1>
      <p class="muted">v{p.version} · this page shows your memories, so it needs to know it is you.</p>
      {p.message ? (
        <p class="bad" role="alert" data-testid="signin-error">
          {p.message}
        </p>
      ) : null}
      <p>
        Run <code>dionysus open</code> in a terminal, as the user who runs the daemon: it opens this page
        signed in.
      </p>
      <p>
        Or paste the API token from <code data-testid="token-path">{p.tokenPath}</code>:
      </p>
      <label>
        API token
        <input name="token" type="password" autocomplete="off" maxlength={200} required />
      </label>
      <button type="submit">Sign in</button>
    </form>
  </Layout>
);

/** Whether the request is a browser navigating (it wants a page, not problem+json). */
const wantsPage = (c: Context) => (c.req.header("accept") ?? "").includes("text/html");

export function signInPage(c: Context, tokenPath: string, status: 200 | 401 | 429, message?: string) {
  if (status === 401) c.header("WWW-Authenticate", 'Bearer realm="dionysus-edge"');
  const page = <SignInPage version={VERSION} tokenPath={tokenPath} {...(message ? { message } : {})} />;
  return c.html(`<!doctype html>${page}`, status, PAGE_HEADERS);
}

/** Sessions go only to this machine: a browser elsewhere (`serve --allow-remote`) uses no cookie. */
function requireLoopback(c: Context): void {
  const ip = (c.env as ServerLike | undefined)?.requestIP?.(c.req.raw)?.address;
  if (ip === undefined || !isLoopbackAddress(ip))
    throw new DionysusError("forbidden", "a browser session is only handed out over loopback");
}

export function signInRoutes(deps: SignInDeps): Hono {
  const { sessions, tokenPath } = deps;
  const isToken = deps.apiToken === null ? () => false : secretMatcher(deps.apiToken);
  const ttlS = TICKET_TTL_MS / 1000;
  const app = new Hono();

  const refuse = (c: Context, message: string) => {
    if (wantsPage(c)) return signInPage(c, tokenPath, 401, message);
    throw new DionysusError("unauthorized", message);
  };

  const startSession = (c: Context) => {
    c.header("Set-Cookie", sessionCookie(sessions.secret));
    c.header("Cache-Control", "no-store");
  };

  // The ticket is in the URL: no Referer may carry it anywhere, no cache may keep the answer.
  app.get("/session", (c) => {
    requireLoopback(c);
    c.header("Cache-Control", "no-store");
    c.header("Referrer-Policy", "no-referrer");
    const ticket = c.req.query("ticket");
    if (!ticket)
      return refuse(
        c,
        `a browser session needs a ticket: run 'dionysus open', or open / and paste the API token from ${tokenPath}`,
      );
    if (ticket.length > 200 || !sessions.redeemTicket(ticket))
      return refuse(
        c,
        `this ticket is unknown, used or expired (a ticket works once, within ${ttlS} s): run 'dionysus open' again, or paste the API token from ${tokenPath}`,
      );
    startSession(c);
    // `?next=/` (what `dionysus open` sends): on to the page.
    if (c.req.query("next") === "/") return c.redirect("/", 303);
    return c.body(null, 204);
  });

  app.post(
    "/session",
    bodyLimit({
      maxSize: 4096,
      onError: () => {
        throw new DionysusError("payload_too_large", "the sign-in form is larger than 4096 bytes");
      },
    }),
    async (c) => {
      requireLoopback(c);
      // The form must come from the daemon's own page: a browser always sends Origin on a POST
      // (the Origin guard already refused other sites'); a program has the bearer token instead.
      const origin = c.req.header("origin");
      const own = `${new URL(c.req.url).protocol}//${c.req.header("host") ?? new URL(c.req.url).host}`;
      if (origin === undefined || origin.toLowerCase() !== own.toLowerCase())
        throw new DionysusError(
          "forbidden",
          "this form must be sent from the daemon's own sign-in page (Origin missing or foreign)",
        );
      const type = c.req.header("content-type") ?? "";
      if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)\s*(;|$)/i.test(type))
        throw new DionysusError("unsupported_media_type", "send the sign-in form from the sign-in page");
      const wait = sessions.blockedForS();
      if (wait > 0) {
        c.header("Retry-After", String(wait));
        return signInPage(c, tokenPath, 429, `Too many wrong tokens. Wait ${wait} s and try again.`);
      }
      let token: unknown;
      try {
        token = (await c.req.parseBody()).token;
      } catch {
        throw new DionysusError("invalid_input", "send the sign-in form from the sign-in page");
      }
      if (typeof token !== "string" || !isToken(token.trim())) {
        sessions.failed();
        return signInPage(c, tokenPath, 401, `That is not this daemon's API token (see ${tokenPath}).`);
      }
      startSession(c);
      return c.redirect("/", 303);
    },
  );

  return app;
}
