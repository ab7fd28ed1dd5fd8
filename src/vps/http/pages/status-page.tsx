/**
 * The VPS's page at `/` (hono/jsx, no script, one stylesheet from the binary): a sign-in form, or
 * for a signed-in user their devices (with revoke) and sync state, and their job queue.
 */
import type { Child, FC } from "hono/jsx";
import type { PageDevice, PageJobs } from "./queries.ts";

const when = (iso: string | null) => (iso ? iso.replace("T", " ").replace(/\.\d+Z$/, "Z") : "never");

const Layout: FC<{ title: string; children?: Child }> = ({ title, children }) => (
  <html lang="en">
    <head>
      <meta charset="utf-8" />
      <meta name="viewport" content="width=device-width,initial-scale=1" />
      <title>{title}</title>
      <link rel="stylesheet" href="/assets/vps.css" />
    </head>
    <body>{children}</body>
  </html>
);

export const SignInPage: FC<{ version: string; username?: string; message?: string }> = (p) => (
  <Layout title="Dionysus: sign in">
    <form class="signin" method="post" action="/signin">
      <h1>Dionysus</h1>
      <p class="muted">Sign in to see your devices and their sync state. v{p.version}</p>
      {p.message ? (
        <p class="bad" role="alert">
          {p.message}
        </p>
      ) : null}
      <label>
        User name
        <input name="username" value={p.username ?? ""} autocomplete="username" maxlength={64} required />
      </label>
      <label>
        Password
        <input name="password" type="password" autocomplete="current-password" maxlength={1024} required />
      </label>
      <button type="submit">Sign in</button>
    </form>
  </Layout>
);

export interface DashboardProps {
  version: string;
  userName: string;
  memories: number;
  devices: PageDevice[];
  jobs: PageJobs;
  notice?: string;
}

export const Dashboard: FC<{ p: DashboardProps }> = ({ p }) => (
  <Layout title="Dionysus">
    <header>
      <h1>Dionysus</h1>
      <span>
        <span class="muted">
          v{p.version} · signed in as <b data-testid="user">{p.userName}</b>{" "}
        </span>
        <form class="inline" method="post" action="/signout">
          <button type="submit">Sign out</button>
        </form>
      </span>
    </header>
    <main>
      {p.notice ? (
        <p class="good" role="status">
          {p.notice}
        </p>
      ) : null}
      <section>
        <h2>
          Memories: <span data-testid="memories">{p.memories}</span>
        </h2>
      </section>
      <section aria-labelledby="devices">
        <h2 id="devices">Devices</h2>
        {p.devices.length === 0 ? (
          <p class="muted">No device has signed in yet: run dionysus login on one.</p>
        ) : (
          <table data-testid="devices">
            <thead>
              <tr>
                <th>device</th>
                <th>last seen</th>
                <th>writes applied</th>
                <th>state</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {p.devices.map((d) => (
                <tr data-device={d.device_id}>
                  <td>
                    {d.device_name ?? "(unnamed)"}{" "}
                    {d.platform ? <span class="muted">({d.platform})</span> : null}
                    <br />
                    <code>{d.device_id}</code>
                  </td>
                  <td>{when(d.last_seen)}</td>
                  <td>{d.last_mutation_id}</td>
                  <td>{d.revoked_at ? <span class="bad">revoked {when(d.revoked_at)}</span> : "active"}</td>
                  <td>
                    {d.revoked_at ? null : (
                      <form
                        class="inline"
                        method="post"
                        action={`/devices/${encodeURIComponent(d.device_id)}/revoke`}
                      >
                        <button type="submit">Revoke</button>
                      </form>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="jobs">
        <h2 id="jobs">Job queue</h2>
        {p.jobs.counts.length === 0 ? (
          <p class="muted">No jobs.</p>
        ) : (
          <table data-testid="jobs">
            <tbody>
              {p.jobs.counts.map((j) => (
                <tr>
                  <th>{j.kind}</th>
                  <td>{j.status}</td>
                  <td data-job={`${j.kind}:${j.status}`}>{j.n}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {p.jobs.failed.length > 0 ? (
          <>
            <h2>Failed jobs</h2>
            <table data-testid="failed-jobs">
              <tbody>
                {p.jobs.failed.map((f) => (
                  <tr>
                    <td>{f.kind}</td>
                    <td>{when(f.finished_at)}</td>
                    <td class="bad">{f.error ?? "failed"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : null}
      </section>
    </main>
  </Layout>
);
