/**
 * Private memories never leave their device: after a full sync through a real VPS on real
 * PostgreSQL (and its background jobs), no table of the VPS database holds a row or any trace of
 * their content. A memory made private after it was shared is deleted on the VPS and on the other
 * devices, and stays on its own.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { type Cluster, createCluster, type EdgeDevice, syncNow } from "../helpers/cluster.ts";
import { eventually } from "../helpers/harness.ts";

setDefaultTimeout(120_000);

type Mem = { id: string; content: string; private: boolean; source: string };

describe("private memories (VPS on PostgreSQL, edge daemons as real processes)", () => {
  let cluster: Cluster;
  let a: EdgeDevice;
  let b: EdgeDevice;

  beforeAll(async () => {
    cluster = await createCluster();
    a = await cluster.device("laptop");
    b = await cluster.device("phone");
  });
  afterAll(async () => {
    await cluster?.close();
  });

  /** Every row of every table of the VPS database, as text. */
  async function dumpVps(): Promise<string> {
    const tables = await cluster.sql<{ name: string }>(
      `select quote_ident(table_schema) || '.' || quote_ident(table_name) as name
       from information_schema.tables
       where table_schema not in ('pg_catalog', 'information_schema') and table_type = 'BASE TABLE'`,
    );
    expect(tables.length).toBeGreaterThan(10);
    const parts: string[] = [];
    for (const { name } of tables) {
      const rows = await cluster.sql<{ t: string }>(`select t::text as t from ${name} t`);
      parts.push(`${name}\n${rows.map((r) => r.t).join("\n")}`);
    }
    return parts.join("\n");
  }

  test("after a full sync, the VPS holds no row and no trace of a private memory", async () => {
    const secret = "Quokka-Zanzibar-7731 is the code for the blue safe";
    const viaApi = await a.api<Mem>("POST", "/v1/memories", {
      content: secret,
      private: true,
      tags: ["vault9"],
    });
    expect(viaApi.status).toBe(201);
    expect(viaApi.body.private).toBe(true);
    const viaCli = await a.cli(["ingest", "--private", "--json", "Marmoset-Halibut-4410 passport renewal"]);
    expect(viaCli.code).toBe(0);
    const cliMem = JSON.parse(viaCli.stdout) as Mem;
    expect(cliMem).toMatchObject({ private: true, source: "cli" });
    // Shared memories around it, so the sync really runs and pushes.
    const shared = await a.api<Mem>("POST", "/v1/memories", { content: "a shared note about the garden" });
    const edited = await a.api<Mem>("PATCH", `/v1/memories/${viaApi.body.id}`, {
      content: `${secret}, edited`,
    });
    expect(edited.status).toBe(200);

    await syncNow(a);
    await eventually(
      async () => ((await cluster.vpsMemories()).has(shared.body.id) ? true : undefined),
      20_000,
      "the shared memory on the VPS",
    );
    // Let the VPS's background jobs (vectors, graph extraction) finish too.
    await eventually(
      async () => {
        const [r] = await cluster.sql<{ n: string }>(
          "select count(*) as n from jobs where status in ('queued', 'running')",
        );
        return Number(r?.n) === 0 ? true : undefined;
      },
      30_000,
      "the VPS's jobs to finish",
    );
    const dump = (await dumpVps()).toLowerCase();
    expect(dump).toContain("a shared note about the garden");
    for (const trace of [
      "quokka",
      "zanzibar",
      "7731",
      "vault9",
      "marmoset",
      "halibut",
      "4410",
      viaApi.body.id,
      cliMem.id,
    ]) {
      // As a token of its own: "7731" may well occur inside a random hash or a vector's hex.
      const token = new RegExp(
        `(?<![0-9a-z])${trace.toLowerCase().replace(/[^0-9a-z]/g, "\\$&")}(?![0-9a-z])`,
      );
      expect(dump).not.toMatch(token);
    }

    // On the device, it is still listed and recalled; the other device never sees it.
    const recalled = await a.api<{ results: { memory: Mem }[] }>("POST", "/v1/recall", { query: "quokka" });
    expect(recalled.body.results.map((h) => h.memory.id)).toEqual([viaApi.body.id]);
    await syncNow(b);
    expect((await b.api("GET", `/v1/memories/${viaApi.body.id}`)).status).toBe(404);
    // The numbering the VPS sees stayed gapless: nothing failed or waits.
    const status = await a.api<{ queue: { queued: number; failed: number } }>("GET", "/v1/sync/status");
    expect(status.body.queue).toMatchObject({ queued: 0, failed: 0 });
  });

  test("shared → private deletes it on the VPS and the other devices, and keeps it on its own", async () => {
    const m = await a.api<Mem>("POST", "/v1/memories", { content: "Pelican-Ostrich at first shared" });
    await syncNow(a);
    await eventually(
      async () => ((await b.api("GET", `/v1/memories/${m.body.id}`)).status === 200 ? true : undefined),
      20_000,
      "the shared memory on B",
    );
    const p = await a.api<Mem>("PATCH", `/v1/memories/${m.body.id}`, { private: true });
    expect(p.body).toMatchObject({ private: true, content: "Pelican-Ostrich at first shared" });
    await syncNow(a);
    await eventually(
      async () => ((await b.api("GET", `/v1/memories/${m.body.id}`)).status === 404 ? true : undefined),
      20_000,
      "the delete on B",
    );
    expect((await cluster.vpsMemories()).has(m.body.id)).toBe(false);
    const [row] = await cluster.sql<{ content: string; deleted: boolean }>(
      "select content, deleted from memories where id = $1",
      [m.body.id],
    );
    expect(row).toEqual({ content: "", deleted: true });
    // A's copy stays, through further syncs.
    await syncNow(a);
    expect((await a.api<Mem>("GET", `/v1/memories/${m.body.id}`)).body).toMatchObject({
      content: "Pelican-Ostrich at first shared",
      private: true,
    });

    // Private → shared travels again like a new write.
    await a.api<Mem>("PATCH", `/v1/memories/${m.body.id}`, { private: false });
    await syncNow(a);
    await eventually(
      async () => {
        const r = await b.api<Mem>("GET", `/v1/memories/${m.body.id}`);
        return r.status === 200 && r.body.content === "Pelican-Ostrich at first shared" ? true : undefined;
      },
      20_000,
      "the memory shared again on B",
    );
  });
});
