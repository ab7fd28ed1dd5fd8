/**
 * `dionysus login URL` without an API key: the RFC 8628 device flow through real processes.
 * The CLI prints the verification URL and code, the user approves it on the VPS's /device page
 * (here: the same form POST a browser sends), and the CLI finishes the login and the first sync.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Cluster, createCluster, type EdgeDevice } from "../helpers/cluster.ts";
import { bun, cliEntry, eventually, repoRoot } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

describe("dionysus login with the device authorization grant", () => {
  let cluster: Cluster;
  let phone: EdgeDevice;

  beforeAll(async () => {
    cluster = await createCluster();
    phone = await cluster.device("phone", {}, { login: false });
  });
  afterAll(async () => {
    await cluster?.close();
  });

  async function startLogin() {
    const proc = Bun.spawn(
      [bun, cliEntry, "--data-dir", phone.dataDir, "login", cluster.vpsUrl, "--name", "phone", "--json"],
      {
        cwd: repoRoot,
        env: { ...process.env, NO_COLOR: "1" },
        stdin: "ignore",
        stdout: "pipe",
        stderr: "pipe",
      },
    );
    let err = "";
    void (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr) err += dec.decode(chunk, { stream: true });
    })();
    const code = await eventually(
      () => /enter the code ([A-Z0-9-]+)/.exec(err)?.[1],
      20_000,
      "the user code on stderr",
    );
    expect(err).toContain(`${cluster.vpsUrl}/device`);
    return { proc, code, stderr: () => err };
  }

  const approve = (code: string, action: "approve" | "deny", password = "correct horse battery") =>
    fetch(`${cluster.vpsUrl}/device`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: cluster.vpsUrl },
      body: new URLSearchParams({ user_code: code, username: "alice", password, action }),
    });

  test("denied on the page: the CLI says so and exits non-zero, nothing is stored", async () => {
    const { proc, code, stderr } = await startLogin();
    expect((await approve(code, "deny")).status).toBe(200);
    expect(await proc.exited).toBe(4);
    expect(stderr()).toContain("denied");
    expect((await phone.api<{ auth: string }>("GET", "/health")).body.auth).toBe("none");
  });

  test("a wrong password is refused on the page; approved, the CLI logs in and syncs", async () => {
    const m = await phone.api<{ id: string }>("POST", "/v1/memories", {
      content: "Written before logging in",
    });
    const { proc, code } = await startLogin();
    const wrong = await approve(code, "approve", "not the password");
    expect(wrong.status).toBeGreaterThanOrEqual(400);
    expect((await approve(code, "approve")).status).toBe(200);
    const out = await new Response(proc.stdout).text();
    expect(await proc.exited).toBe(0);
    const result = JSON.parse(out) as {
      user: { name: string };
      device_id: string;
      sync: { pushed: number } | null;
    };
    expect(result.user.name).toBe("alice");
    expect(result.sync?.pushed).toBe(1);
    expect((await cluster.vpsMemories()).get(m.body.id)).toBe("Written before logging in");
    expect((await phone.api<{ auth: string }>("GET", "/health")).body.auth).toBe("ok");
  });
});
