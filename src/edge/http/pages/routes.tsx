/**
 * The status page's routes on the edge daemon: `GET /` (the page), `POST /sync/retry` (requeue
 * the failed sync items `id=N…`, or all of them with `all=1`) and `/assets/status.css`. They sit
 * behind the daemon's Host, Origin and token guards (the style sheet needs no token: the sign-in
 * page uses it); a browser gets in through the session cookie (`GET /` without one answers the
 * sign-in page, ./sign-in.tsx). A form POST authenticated by that cookie must also carry the
 * page's own Origin, so no other site can make the browser post it (CSRF).
 */
import { type Context, Hono } from "hono";
import { z } from "zod";
import { DionysusError, describeIssues } from "../../../core/errors.ts";
import { filterFromQuery, parseFilter, withDefaultScope } from "../../../core/filter.ts";
import type { QueueCounts } from "../../../core/protocol/sync.ts";
import { VERSION } from "../../../core/version.ts";
import type { EdgeStore } from "../../store/types.ts";
import { type PageSync, type SearchForm, StatusPage } from "./status-page.tsx";
import { STATUS_CSS } from "./style.ts";

export interface StatusPageDeps {
  store: EdgeStore;
  /** The daemon's default scope: a search that names no scope is narrowed to it and below. */
  defaultScope?: string | null;
  /** The sync engine's status, and a nudge to push now (after a retry). */
  sync?: { status(): object; onLocalWrite(): void };
}

/** No script at all; styles and form posts from this origin only; never framed. */
export const STATUS_PAGE_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const PAGE_HEADERS = {
  "Content-Security-Policy": STATUS_PAGE_CSP,
  "X-Frame-Options": "DENY",
  "Cache-Control": "no-store",
  // Not no-referrer: with it a browser sends `Origin: null` on the page's own form posts.
  "Referrer-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
};

/** How many memories (or hits) the page lists. */
const SHOWN = 20;
const FAILED_SHOWN = 20;
const CONFLICTS_SHOWN = 10;

/** The page's own parameters; the filter's (`kind`, `tag`, `scope`, `source`, `since`, `until`)
 * are read by `filterFromQuery`, as on `GET /v1/memories`. */
const PageQuery = z.object({
  q: z.string().max(500, "the search is longer than 500 characters").default(""),
  retried: z.coerce.number().int().min(0).optional(),
});

/** The search form's fields that are filter keys (an empty field is no filter). */
const FILTER_FIELDS = ["kind", "tag", "scope", "source", "since", "until"] as const;

export function statusPageRoutes(deps: StatusPageDeps): Hono {
  const { store } = deps;
  const app = new Hono();

  app.get("/assets/status.css", (c) =>
    c.body(STATUS_CSS, 200, {
      "Content-Type": "text/css; charset=utf-8",
      "Cache-Control": "no-cache",
      "X-Content-Type-Options": "nosniff",
    }),
  );

  app.get("/", (c) => {
    const parsed = PageQuery.safeParse(c.req.query());
    if (!parsed.success) throw new DionysusError("invalid_input", describeIssues(parsed.error.issues));
    const { q, retried } = parsed.data;
    const url = new URL(c.req.url);
    const fields: Record<string, string> = {};
    const given = new URLSearchParams();
    for (const key of FILTER_FIELDS) {
      const v = url.searchParams.get(key)?.trim() ?? "";
      fields[key] = v;
      if (v !== "") given.set(key, v);
    }
    const filter = withDefaultScope(parseFilter(filterFromQuery(given), null), deps.defaultScope);
    const query = q.trim();
    const searching = query !== "" || given.size > 0;
    // The filter runs inside the store's query, so a narrow filter still fills the page.
    const results =
      query !== ""
        ? store.recall(query, SHOWN, filter).map((h) => ({ memory: h.memory, snippet: h.snippet }))
        : store.recent(SHOWN, filter).map((memory) => ({ memory }));
    const queue: QueueCounts = store.queueCounts();
    const page = (
      <StatusPage
        p={{
          version: VERSION,
          deviceId: store.deviceId,
          count: store.countMemories(),
          queue,
          sync: (deps.sync?.status() ?? {}) as PageSync,
          failed: queue.failed > 0 ? store.queueItems("failed", FAILED_SHOWN) : [],
          conflicts: store.conflicts(CONFLICTS_SHOWN),
          search: { q, ...fields } as SearchForm,
          results,
          searching,
          ...(retried !== undefined
            ? { notice: `Requeued ${retried} failed item${retried === 1 ? "" : "s"}.` }
            : {}),
        }}
      />
    );
    return c.html(`<!doctype html>${page}`, 200, PAGE_HEADERS);
  });

  app.post("/sync/retry", async (c) => {
    requireSameOrigin(c);
    let form: Record<string, string | File | (string | File)[]>;
    try {
      form = await c.req.parseBody({ all: true });
    } catch {
      throw new DionysusError("invalid_input", "send the retry form from the status page");
    }
    const raw = form.id === undefined ? [] : Array.isArray(form.id) ? form.id : [form.id];
    const ids = raw.map((v) => (typeof v === "string" && /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN));
    if (ids.some((n) => !Number.isSafeInteger(n)))
      throw new DionysusError("invalid_input", "id must be the number of a failed sync item");
    // Only items still failed: a page shown before another retry may name items requeued since.
    const failedNow = store.queueCounts().failed;
    const stillFailed = new Set(
      failedNow === 0 ? [] : store.queueItems("failed", failedNow).map((i) => i.mutation_id),
    );
    const wanted = form.all === "1" ? undefined : ids.filter((id) => stillFailed.has(id));
    const n = wanted?.length === 0 || failedNow === 0 ? 0 : store.retryFailed(wanted).retried.length;
    if (n > 0) deps.sync?.onLocalWrite();
    return c.redirect(`/?retried=${n}`, 303);
  });

  return app;
}

/**
 * A state-changing page request authenticated by the cookie must come from a page of this origin:
 * browsers always send Origin on a POST, and another site's would differ (the Origin guard already
 * refused that case). A caller with the bearer token is a program, not a browser, and may omit it.
 */
function requireSameOrigin(c: Context): void {
  if (/^Bearer\s/i.test(c.req.header("authorization") ?? "")) return;
  const origin = c.req.header("origin");
  const own = new URL(c.req.url).origin;
  const host = c.req.header("host");
  if (origin === undefined || (origin !== own && origin !== `${new URL(c.req.url).protocol}//${host}`))
    throw new DionysusError("forbidden", "this form must be sent from the status page (Origin missing)");
}
