/**
 * The VPS's page in a real browser (Debian's chromium through playwright-core) against a real
 * `dionysus vps serve` on PostgreSQL with real edge daemons logged in: sign-in (a wrong password
 * refused), the user's devices and their sync state, the job queue, revoking a device (which the
 * device then feels), and that another user sees none of it.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import {
  hasChromium,
  launchChromium,
  NO_CHROMIUM,
  SCREENSHOTS,
  type TestBrowser,
} from "../helpers/browser.ts";
import { type Cluster, createCluster, type EdgeDevice } from "../helpers/cluster.ts";
import { cliJson, eventually } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

if (!hasChromium) console.warn(`vps-status-page: ${NO_CHROMIUM}`);

describe.skipIf(!hasChromium)("VPS status page (chromium)", () => {
  let cluster: Cluster;
  let laptop: EdgeDevice;
  let phone: EdgeDevice;
  let b: TestBrowser;

  beforeAll(async () => {
    cluster = await createCluster();
    laptop = await cluster.device("laptop");
    phone = await cluster.device("phone");
    await laptop.api("POST", "/v1/memories", { content: "Dinner with Ana on Friday" });
    await eventually(async () => (await cluster.vpsMemories()).size === 1 || undefined, 30_000, "the push");
    await cliJson([
      "vps",
      "user",
      "add",
      "bob",
      "--password",
      "bob's own password",
      "--database-url",
      cluster.databaseUrl,
    ]);
    // What the worker did with the push's jobs depends on timing; two known rows make the job
    // queue's display checkable (a failed consolidation of Alice's, a finished one of Bob's).
    const users = await cluster.sql<{ id: string; name: string }>("select id, name from users");
    const idOf = (name: string) => users.find((u) => u.name === name)!.id;
    await cluster.sql(
      `insert into jobs (user_id, id, kind, status, attempts, finished_at, error)
       values ($1, 'job-a', 'consolidate', 'failed', 5, now(), 'the chat model is unreachable'),
              ($2, 'job-b', 'consolidate', 'done', 1, now(), null)`,
      [idOf("alice"), idOf("bob")],
    );
    b = await launchChromium();
  });
  afterAll(async () => {
    await b?.close();
    await cluster?.close();
  });

  test("sign-in: a wrong password is refused, the right one shows the devices and the job queue", async () => {
    const page = await b.context.newPage();
    await page.goto(`${cluster.vpsUrl}/`);
    await page.getByLabel("User name").fill("alice");
    await page.getByLabel("Password").fill("not the password");
    await page.getByRole("button", { name: "Sign in" }).click();
    expect(await page.getByRole("alert").textContent()).toContain("Wrong user name or password");
    expect(await page.getByTestId("devices").count()).toBe(0);

    await page.getByLabel("Password").fill("correct horse battery");
    await page.getByRole("button", { name: "Sign in" }).click();
    expect(await page.getByTestId("user").textContent()).toBe("alice");
    expect(await page.getByTestId("memories").textContent()).toBe("1");
    // The laptop, the phone, and the reader the cluster pulls with to observe the VPS.
    const rows = page.getByTestId("devices").locator("tbody tr");
    expect(await rows.count()).toBe(3);
    const text = (await rows.allTextContents()).join("\n");
    expect(text).toContain("laptop");
    expect(text).toContain("phone");
    // The laptop's one write was applied: its sync state says so.
    const laptopId = (await laptop.api<{ device_id: string }>("GET", "/health")).body.device_id;
    expect(await page.locator(`tr[data-device="${laptopId}"] td`).nth(2).textContent()).toBe("1");
    expect(await page.getByText("No jobs.").count()).toBe(0);
    expect(await page.locator('[data-job="consolidate:failed"]').textContent()).toBe("1");
    expect(await page.locator('[data-job="consolidate:done"]').count()).toBe(0);
    expect(await page.getByTestId("failed-jobs").textContent()).toContain("the chat model is unreachable");
    await page.screenshot({ path: join(SCREENSHOTS, "vps-dashboard.png"), fullPage: true });

    const cookie = (await b.context.cookies(cluster.vpsUrl)).find((c) => c.name === "dionysus_vps_session");
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe("Strict");
    await page.close();
  });

  test("revoke: the device is revoked and must sign in again", async () => {
    const page = await b.context.newPage();
    await page.goto(`${cluster.vpsUrl}/`);
    const phoneId = (await phone.api<{ device_id: string }>("GET", "/health")).body.device_id;
    const row = page.locator(`tr[data-device="${phoneId}"]`);
    await Promise.all([page.waitForURL(/revoked=/), row.getByRole("button", { name: "Revoke" }).click()]);
    expect(await page.getByRole("status").textContent()).toContain(phoneId);
    expect(await row.textContent()).toContain("revoked");
    await page.screenshot({ path: join(SCREENSHOTS, "vps-revoked.png"), fullPage: true });
    await page.close();

    const rows = await cluster.sql<{ revoked_at: Date | null }>(
      "select revoked_at from devices where device_id = $1",
      [phoneId],
    );
    expect(rows[0]?.revoked_at).not.toBeNull();
    await phone.api("POST", "/v1/sync/run");
    await eventually(
      async () =>
        (await phone.api<{ auth: string }>("GET", "/health")).body.auth === "reauth_required" || undefined,
      30_000,
      "the phone to notice the revocation",
    );
  });

  test("another user sees only their own (no devices, no memories); forged posts are refused", async () => {
    const other = await launchChromium();
    try {
      const page = await other.context.newPage();
      await page.goto(`${cluster.vpsUrl}/`);
      await page.getByLabel("User name").fill("bob");
      await page.getByLabel("Password").fill("bob's own password");
      await page.getByRole("button", { name: "Sign in" }).click();
      expect(await page.getByTestId("user").textContent()).toBe("bob");
      expect(await page.getByTestId("memories").textContent()).toBe("0");
      expect(await page.getByTestId("devices").count()).toBe(0);
      expect(await page.locator('[data-job="consolidate:done"]').textContent()).toBe("1");
      expect(await page.getByTestId("failed-jobs").count()).toBe(0);
      const bobCookie = (await other.context.cookies(cluster.vpsUrl)).find(
        (c) => c.name === "dionysus_vps_session",
      )!;

      // Bob cannot revoke Alice's laptop, even posting the form by hand.
      const laptopId = (await laptop.api<{ device_id: string }>("GET", "/health")).body.device_id;
      const revoke = (headers: Record<string, string>) =>
        fetch(`${cluster.vpsUrl}/devices/${laptopId}/revoke`, {
          method: "POST",
          redirect: "manual",
          headers,
        });
      const cookie = `dionysus_vps_session=${bobCookie.value}`;
      expect((await revoke({ Cookie: cookie, Origin: cluster.vpsUrl })).status).toBe(404);
      expect((await revoke({ Cookie: cookie })).status).toBe(403);
      expect((await revoke({ Cookie: cookie, Origin: "http://evil.example" })).status).toBe(403);
      expect((await revoke({ Origin: cluster.vpsUrl })).status).toBe(401);
      const rows = await cluster.sql<{ revoked_at: Date | null }>(
        "select revoked_at from devices where device_id = $1",
        [laptopId],
      );
      expect(rows[0]?.revoked_at).toBeNull();
    } finally {
      await other.close();
    }
  });
});
