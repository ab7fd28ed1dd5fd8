/**
 * The edge daemon's status page (`GET /`), rendered on the server with hono/jsx: no script, one
 * stylesheet from the binary. Everything shown comes from the local store and the sync engine;
 * every value is escaped by JSX.
 */
import type { Child, FC } from "hono/jsx";
import type { LocalMemory } from "../../../core/memory.ts";
import type { AuthState } from "../../../core/protocol/edge-api.ts";
import type { ConflictEntry, QueueCounts } from "../../../core/protocol/sync.ts";
import type { QueueItem } from "../../store/types.ts";

/** What the page shows of the sync engine's status (absent fields: no engine). */
export interface PageSync {
  auth?: AuthState;
  vps_url?: string | null;
  online?: boolean;
  realtime?: string;
  last_success_at?: string | null;
  last_attempt_at?: string | null;
  next_attempt_at?: string | null;
  backoff_ms?: number;
  consecutive_failures?: number;
  last_error?: string | null;
}

/** The search form's fields as sent (empty: not used). */
export interface SearchForm {
  q: string;
  kind: string;
  tag: string;
  scope: string;
  source: string;
  since: string;
  until: string;
}

export interface StatusPageProps {
  version: string;
  deviceId: string;
  count: number;
  queue: QueueCounts;
  sync: PageSync;
  failed: QueueItem[];
  conflicts: ConflictEntry[];
  search: SearchForm;
  /** The memories listed: the recent ones, or the hits of a search. */
  results: Array<{ memory: LocalMemory; snippet?: string }>;
  searching: boolean;
  notice?: string;
}

const when = (iso: string | null | undefined) =>
  iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "never";

export const Layout: FC<{ title: string; children?: Child }> = ({ title, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width,initial-scale=1" />
      <title>{title}</title>
      <link rel="stylesheet" href="/assets/status.css" />
    </head>
    <body>{children}</body>
  </html>
);

/** A recall snippet marks the matched words `**like this**` (FTS5's snippet()); shown as <mark>. */
const Snippet: FC<{ text: string }> = ({ text }) => (
  <>{text.split("**").map((part, i) => (i % 2 === 1 ? <mark>{part}</mark> : part))}</>
);

const Memories: FC<{ results: StatusPageProps["results"] }> = ({ results }) =>
  results.length === 0 ? (
    <p class="muted">Nothing here.</p>
  ) : (
    <ul class="memories" data-testid="memories">
      {results.map(({ memory, snippet }) => (
        <li>
          <div>{snippet === undefined ? memory.content : <Snippet text={snippet} />}</div>
          <div class="meta">
            {memory.kind}
            {memory.scope ? ` · ${memory.scope}` : ""} · {memory.source}
            {memory.private ? " · private" : ""} · {when(memory.updated_at)} · <code>{memory.id}</code>{" "}
            {memory.tags.map((t) => (
              <span class="tag">{t}</span>
            ))}
          </div>
        </li>
      ))}
    </ul>
  );

const SearchBox: FC<{ search: SearchForm }> = ({ search }) => (
  <form class="search" method="get" action="/">
    <input type="search" name="q" value={search.q} placeholder="Search memories" aria-label="Search" />
    <select name="kind" aria-label="Kind">
      {["", "episodic", "identity", "summary"].map((k) => (
        <option value={k} selected={k === search.kind}>
          {k || "any kind"}
        </option>
      ))}
    </select>
    <input name="tag" value={search.tag} placeholder="tag" aria-label="Tag" size={10} />
    <input
      name="scope"
      value={search.scope}
      placeholder="scope (work, project/*)"
      aria-label="Scope"
      size={14}
    />
    <input
      name="source"
      value={search.source}
      placeholder="source (cli, mcp:…)"
      aria-label="Source"
      size={12}
    />
    <input
      name="since"
      value={search.since}
      placeholder="since (7d or ISO time)"
      aria-label="Since"
      size={14}
    />
    <input name="until" value={search.until} placeholder="until" aria-label="Until" size={10} />
    <button type="submit">Search</button>
  </form>
);

const SyncSection: FC<{ p: StatusPageProps }> = ({ p }) => {
  const s = p.sync;
  return (
    <section aria-labelledby="sync">
      <h2 id="sync">Sync</h2>
      <table data-testid="queue">
        <tbody>
          {(["queued", "syncing", "synced", "failed"] as const).map((k) => (
            <tr>
              <th>{k}</th>
              <td data-state={k}>{p.queue[k]}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <p>
        VPS: {s.vps_url ? <code>{s.vps_url}</code> : <span class="muted">none (local only)</span>}
        {s.vps_url ? s.online ? <span class="good"> online</span> : <span class="warn"> offline</span> : null}
        <br />
        Last sync: <span data-testid="last-sync">{when(s.last_success_at)}</span>
        <br />
        {s.backoff_ms ? (
          <span class="warn">
            Backing off {Math.round(s.backoff_ms / 1000)} s after {s.consecutive_failures ?? 0} failures; next
            try {when(s.next_attempt_at)}
          </span>
        ) : (
          <span class="muted">No backoff</span>
        )}
        {s.last_error ? (
          <>
            <br />
            <span class="bad">Last error: {s.last_error}</span>
          </>
        ) : null}
      </p>
      <h2>Failed items</h2>
      {p.failed.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <form method="post" action="/sync/retry">
          <table data-testid="failed">
            <tbody>
              {p.failed.map((f) => (
                <tr>
                  <td>
                    <input
                      type="checkbox"
                      name="id"
                      value={String(f.mutation_id)}
                      checked
                      aria-label="retry"
                    />
                  </td>
                  <td>
                    #{f.mutation_id} {f.op} <code>{f.memory_id}</code>
                    <div class="bad">{f.last_error ?? "failed"}</div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <button type="submit">Retry selected</button>{" "}
          {p.queue.failed > p.failed.length ? (
            <button type="submit" name="all" value="1">
              Retry all {p.queue.failed}
            </button>
          ) : null}
        </form>
      )}
    </section>
  );
};

const Conflicts: FC<{ conflicts: ConflictEntry[] }> = ({ conflicts }) => (
  <section aria-labelledby="conflicts">
    <h2 id="conflicts">Conflicts</h2>
    {conflicts.length === 0 ? (
      <p class="muted">None.</p>
    ) : (
      <ul class="memories">
        {conflicts.map((c) => (
          <li>
            <div>{c.loser ? c.loser.content || "(deleted)" : "(gone)"}</div>
            <div class="meta">
              lost to {c.winner_hlc} on {when(c.resolved_at)} · <code>{c.memory_id}</code>
            </div>
          </li>
        ))}
      </ul>
    )}
  </section>
);

export const StatusPage: FC<{ p: StatusPageProps }> = ({ p }) => (
  <Layout title="Dionysus">
    <header>
      <h1>Dionysus</h1>
      <span class="muted">
        v{p.version} · device <code>{p.deviceId}</code>
      </span>
    </header>
    {p.sync.auth === "reauth_required" ? (
      <div class="banner" role="alert" data-testid="reauth">
        This device must sign in again: run <code>dionysus login</code>. Writes stay queued until then.
      </div>
    ) : null}
    {p.notice ? (
      <div class="notice" role="status">
        {p.notice}
      </div>
    ) : null}
    <main>
      <div>
        <section aria-labelledby="memories">
          <h2 id="memories">
            Memories:{" "}
            <span class="big" data-testid="count">
              {p.count}
            </span>
          </h2>
          <SearchBox search={p.search} />
          <h2>{p.searching ? `Results (${p.results.length})` : "Recent"}</h2>
          <Memories results={p.results} />
        </section>
      </div>
      <div>
        <SyncSection p={p} />
        <Conflicts conflicts={p.conflicts} />
      </div>
    </main>
  </Layout>
);
