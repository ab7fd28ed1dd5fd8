/**
 * Heavy queries end to end (US4): a real VPS process on a fresh PostgreSQL database (its job
 * worker running), a real edge daemon logged in to it, and the real CLI. Semantic recall goes to
 * the VPS and then comes from the edge's cache; graph, consolidation (whose results reach the
 * device through the change feed) and ask run on the VPS; with the VPS stopped, the edge degrades
 * to recall on the device (its built-in embedder) and the VPS-only commands fail with a clear 503.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RecallResponse } from "../../src/core/protocol/edge-api.ts";
import { Job } from "../../src/core/protocol/heavy.ts";
import { GraphAnswer } from "../../src/edge/heavy/service.ts";
import { type Cluster, createCluster, deviceMemories, type EdgeDevice } from "../helpers/cluster.ts";
import { eventually } from "../helpers/harness.ts";

let cluster: Cluster;
let laptop: EdgeDevice;

beforeAll(async () => {
  cluster = await createCluster();
  laptop = await cluster.device("laptop");
});
afterAll(async () => {
  await cluster?.close();
});

async function cliJson<T>(args: string[]): Promise<T> {
  const r = await laptop.cli([...args, "--json"]);
  if (r.code !== 0) throw new Error(`dionysus ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

describe("heavy queries with a real edge and a real VPS", () => {
  test("recall, graph, consolidate and ask route to the VPS; results reach the device", async () => {
    const notes = [
      "Had coffee with Ana Lima in Lisbon yesterday.",
      "The spare key is under the blue flower pot by the back door",
      "Renewed the car insurance until March",
      "Picked up the dry cleaning on Main Street",
    ];
    for (const content of notes)
      expect((await laptop.api("POST", "/v1/memories", { content })).status).toBe(201);
    await Bun.sleep(5);
    const dup = { content: "picked up the dry cleaning on Main Street!" };
    expect((await laptop.api("POST", "/v1/memories", dup)).status).toBe(201);
    expect((await laptop.api("POST", "/v1/sync/run")).status).toBe(200);

    // The VPS worker embeds the new memories (in its own process, started with the VPS a moment
    // ago); semantic recall then finds them there. Asked before, the VPS would answer without them,
    // and the edge would cache that answer for the probes after it.
    await eventually(
      async () => {
        const [r] = await cluster.sql<{ live: string; bare: string }>(
          `SELECT count(*) AS live,
             count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM embeddings AS e WHERE e.user_id = m.user_id AND e.memory_id = m.id)) AS bare
           FROM memories AS m WHERE NOT m.deleted`,
        );
        return Number(r!.live) >= notes.length + 1 && Number(r!.bare) === 0 ? true : undefined;
      },
      120_000,
      "the VPS worker to embed the new memories",
    );
    const first = await eventually(
      async () => {
        const r = RecallResponse.parse(
          await cliJson(["recall", "where", "is", "the", "spare", "key", "--mode", "semantic", "-n", "3"]),
        );
        return r.routed === "vps" && r.results[0]?.memory.content.includes("spare key") ? r : undefined;
      },
      30_000,
      "semantic recall answered by the VPS",
    );
    expect(first.degraded).toBeUndefined();
    const cached = RecallResponse.parse(
      await cliJson(["recall", "Where is the spare KEY?", "--mode", "semantic", "-n", "3"]),
    );
    expect(cached.routed).toBe("cache");
    expect(cached.results.map((h) => h.memory.id)).toEqual(first.results.map((h) => h.memory.id));
    const human = await laptop.cli(["recall", "coffee", "Lisbon"]);
    expect(human.stdout).toContain("(local)");

    const graph = await eventually(
      async () => {
        const g = GraphAnswer.parse(await cliJson(["graph", "ana", "lima", "--depth", "2"]));
        return g.nodes.length > 0 ? g : undefined;
      },
      30_000,
      "the graph to know Ana Lima",
    );
    expect(graph.nodes[0]).toMatchObject({ name: "Ana Lima", type: "person", depth: 0 });
    expect(graph.nodes.map((n) => n.name)).toContain("Lisbon");
    const graphText = await laptop.cli(["graph", "Ana", "Lima"]);
    expect(graphText.code).toBe(0);
    expect(graphText.stdout).toContain("Ana Lima (person");
    expect(graphText.stdout).toContain("Lisbon");
    const bad = await laptop.cli(["graph", "Ana", "--depth", "4"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("depth");

    const waited = await laptop.cli(["consolidate", "--wait", "--json"]);
    expect(waited.code).toBe(0);
    const { job } = JSON.parse(waited.stdout) as { job: unknown };
    const done = Job.parse(job);
    expect(done.status).toBe("done");
    expect(done.result).toMatchObject({ merged_groups: 1, tombstoned: 1 });
    // The merge and the summary reach the device through the change feed (the VPS pokes it).
    await eventually(
      async () => {
        const mems = [...(await deviceMemories(laptop)).values()];
        const copies = mems.filter((c) => c.toLowerCase().startsWith("picked up the dry cleaning"));
        return copies.length === 1 && mems.length === notes.length + 1 ? true : undefined;
      },
      30_000,
      "the merge and the summary on the device",
    );
    const listed = await laptop.api<{
      memories: { id: string; kind: string; embedding?: number[] | null }[];
    }>("GET", "/v1/memories?recent=20");
    expect(listed.body.memories.some((m) => m.kind === "summary")).toBe(true);
    expect(listed.body.memories.every((m) => m.embedding === undefined)).toBe(true);
    // Vectors arrive with the feed too.
    await eventually(
      async () => {
        const one = await laptop.api<{ embedding?: number[] | null }>(
          "GET",
          `/v1/memories/${listed.body.memories[0]!.id}`,
        );
        return one.body.embedding?.length === 100 ? true : undefined; // builtin-words-v1/100
      },
      30_000,
      "a vector on the device",
    );

    const ask = await laptop.cli(["ask", "where", "is", "the", "key?"]);
    expect(ask.code).toBe(5);
    expect(ask.stderr).toContain("no LLM is configured");
  }, 180_000);

  test("with the VPS stopped: recall runs on the device, degraded; VPS-only commands answer 503", async () => {
    await cluster.stopVps();
    const r = RecallResponse.parse(
      await cliJson(["recall", "spare key under the flower pot", "--mode", "semantic"]),
    );
    expect(r.routed).toBe("local");
    expect(r.degraded).toBe(true);
    expect(r.reason).toMatch(/semantic search runs on the VPS and the VPS (is unreachable|request failed)/);
    expect(r.results[0]?.memory.content).toContain("spare key");
    const human = await laptop.cli(["recall", "what", "did", "I", "do", "in", "Lisbon?"]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain("degraded");
    expect(human.stdout).toContain("answered on this device with its built-in embedder");
    for (const args of [
      ["recall", "key", "--route", "vps"],
      ["graph", "Ana Lima"],
      ["consolidate"],
      ["ask", "anything?"],
    ]) {
      const out = await laptop.cli(args);
      expect(out.code).toBe(5);
      expect(out.stderr).toMatch(/VPS/);
    }
  });
});
