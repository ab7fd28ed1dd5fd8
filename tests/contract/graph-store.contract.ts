/**
 * The GraphStore contract: one suite, run against every adapter (PostgreSQL, PGlite, and Neo4j
 * when NEO4J_URL is set). `setup` gives a store on an empty graph; `teardown` releases it.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DionysusError } from "../../src/core/errors.ts";
import type { EntityType } from "../../src/core/ports/entity-extractor.ts";
import type { GraphResult, GraphStore } from "../../src/core/ports/graph-store.ts";
import { uuidv7 } from "../../src/core/uuid.ts";

export interface GraphStoreHarness {
  setup(): Promise<GraphStore>;
  teardown(): Promise<void>;
}

type E = [name: string, type?: EntityType];
const ents = (...es: E[]) => es.map(([name, type]) => ({ name, type: type ?? ("topic" as EntityType) }));
const rel = (from: string, to: string, type = "co_occurs") => ({ from, to, type });

/** Memory ids increase with each call (UUIDv7 with increasing ms), so "newest first" is testable. */
let clock = Date.UTC(2026, 0, 1);
const memoryId = () => {
  clock += 1000;
  return uuidv7(clock);
};

const names = (r: GraphResult) => r.nodes.map((n) => n.name).sort();
const nodeByName = (r: GraphResult, name: string) => r.nodes.find((n) => n.name === name);

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DionysusError);
  expect((err as DionysusError).code).toBe(code as DionysusError["code"]);
}

export function graphStoreContract(
  name: string,
  harness: GraphStoreHarness,
  options: { skip?: string } = {},
) {
  const suite = options.skip ? describe.skip : describe;
  suite(`GraphStore contract: ${name}${options.skip ? ` (skipped: ${options.skip})` : ""}`, () => {
    let store: GraphStore;
    /** A fresh user per test keeps tests independent on one database. */
    let n = 0;
    const user = () => `user-${name}-${++n}-${Math.random().toString(36).slice(2, 8)}`;

    beforeAll(async () => {
      store = await harness.setup();
    });
    afterAll(async () => {
      await store?.close();
      await harness.teardown();
    });

    test("a memory's entities, relations and mention are answered at depth 1", async () => {
      const u = user();
      const m = memoryId();
      await store.upsertMemory({
        userId: u,
        memoryId: m,
        entities: ents(["Ana Lima", "person"], ["Lisbon", "place"], ["coffee"]),
        relations: [rel("Ana Lima", "Lisbon"), rel("Ana Lima", "coffee")],
      });
      const r = await store.query({ userId: u, entity: "Ana Lima", depth: 1, limit: 20 });
      expect(r.nodes[0]).toMatchObject({ name: "Ana Lima", type: "person", depth: 0, mentions: 1 });
      expect(names(r)).toEqual(["Ana Lima", "Lisbon", "coffee"]);
      expect(nodeByName(r, "Lisbon")).toMatchObject({ type: "place", depth: 1, mentions: 1 });
      const id = (x: string) => nodeByName(r, x)!.id;
      expect(r.edges.map((e) => [e.from, e.to, e.type, e.weight]).sort()).toEqual(
        [
          [id("Ana Lima"), id("Lisbon"), "co_occurs", 1],
          [id("Ana Lima"), id("coffee"), "co_occurs", 1],
        ].sort(),
      );
      expect(r.memories).toEqual([{ memory_id: m, entities: expect.any(Array) }]);
      expect([...r.memories[0]!.entities].sort()).toEqual(r.nodes.map((x) => x.id).sort());
    });

    test("lookup is case-insensitive on the normalised name; the first spelling is kept", async () => {
      const u = user();
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["São Paulo", "place"]),
        relations: [],
      });
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["SAO PAULO", "place"]),
        relations: [],
      });
      for (const q of ["são paulo", "  Sao   Paulo's ", "SÃO PAULO"]) {
        const r = await store.query({ userId: u, entity: q, depth: 1, limit: 20 });
        expect(r.nodes).toHaveLength(1);
        expect(r.nodes[0]).toMatchObject({ name: "São Paulo", mentions: 2 });
        expect(r.memories).toHaveLength(2);
      }
    });

    test("an unknown entity answers empty lists, not an error", async () => {
      const u = user();
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["Ana", "person"]),
        relations: [],
      });
      for (const entity of ["Nobody", "...", ""]) {
        expect(await store.query({ userId: u, entity, depth: 2, limit: 20 })).toEqual({
          nodes: [],
          edges: [],
          memories: [],
        });
      }
      expect(await store.query({ userId: user(), entity: "Ana", depth: 1, limit: 20 })).toEqual({
        nodes: [],
        edges: [],
        memories: [],
      });
    });

    test("depth 1, 2 and 3 reach 1, 2 and 3 hops along a chain, in both directions", async () => {
      const u = user();
      // A - B - C - D - E, each link from its own memory, written in alternating directions.
      const chain = ["A", "B", "C", "D", "E"];
      for (let i = 0; i + 1 < chain.length; i++) {
        const [x, y] = i % 2 ? [chain[i + 1]!, chain[i]!] : [chain[i]!, chain[i + 1]!];
        await store.upsertMemory({
          userId: u,
          memoryId: memoryId(),
          entities: ents([x], [y]),
          relations: [rel(x, y)],
        });
      }
      const at = async (entity: string, depth: number) =>
        store.query({ userId: u, entity, depth, limit: 20 });
      expect(names(await at("A", 1))).toEqual(["A", "B"]);
      expect(names(await at("A", 2))).toEqual(["A", "B", "C"]);
      const d3 = await at("A", 3);
      expect(names(d3)).toEqual(["A", "B", "C", "D"]);
      expect(d3.nodes.map((x) => [x.name, x.depth])).toEqual([
        ["A", 0],
        ["B", 1],
        ["C", 2],
        ["D", 3],
      ]);
      expect(d3.edges).toHaveLength(3);
      expect(names(await at("C", 2))).toEqual(["A", "B", "C", "D", "E"]);
      expect(names(await at("E", 1))).toEqual(["D", "E"]);
    });

    test("cycles terminate and every entity is answered once, at its smallest depth", async () => {
      const u = user();
      // Triangle A-B-C plus a tail C-D; one memory.
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["A"], ["B"], ["C"], ["D"]),
        relations: [rel("A", "B"), rel("B", "C"), rel("C", "A"), rel("C", "D")],
      });
      const r = await store.query({ userId: u, entity: "A", depth: 3, limit: 20 });
      expect(r.nodes.map((x) => [x.name, x.depth])).toEqual([
        ["A", 0],
        ["B", 1],
        ["C", 1],
        ["D", 2],
      ]);
      expect(r.edges).toHaveLength(4);
      expect(r.memories).toHaveLength(1);
    });

    test("user isolation: one user's query never returns another user's entities or memories", async () => {
      const a = user();
      const b = user();
      const ma = memoryId();
      const mb = memoryId();
      await store.upsertMemory({
        userId: a,
        memoryId: ma,
        entities: ents(["Ana", "person"], ["Lisbon", "place"]),
        relations: [rel("Ana", "Lisbon")],
      });
      await store.upsertMemory({
        userId: b,
        memoryId: mb,
        entities: ents(["Ana", "person"], ["Tokyo", "place"]),
        relations: [rel("Ana", "Tokyo")],
      });
      const ra = await store.query({ userId: a, entity: "Ana", depth: 3, limit: 100 });
      expect(names(ra)).toEqual(["Ana", "Lisbon"]);
      expect(ra.memories.map((m) => m.memory_id)).toEqual([ma]);
      expect(ra.nodes[0]!.mentions).toBe(1);
      const rb = await store.query({ userId: b, entity: "ana", depth: 3, limit: 100 });
      expect(names(rb)).toEqual(["Ana", "Tokyo"]);
      expect(rb.memories.map((m) => m.memory_id)).toEqual([mb]);
      expect(await store.query({ userId: a, entity: "Tokyo", depth: 1, limit: 100 })).toEqual({
        nodes: [],
        edges: [],
        memories: [],
      });
      // Removing B's memory through A's id changes nothing for B.
      await store.removeMemory(a, mb);
      expect(names(await store.query({ userId: b, entity: "Ana", depth: 1, limit: 100 }))).toEqual([
        "Ana",
        "Tokyo",
      ]);
    });

    test("removeUser removes every entity, relation and mention of that user, and nothing of another", async () => {
      const a = user();
      const b = user();
      for (const [u, place] of [
        [a, "Lisbon"],
        [b, "Tokyo"],
      ] as const)
        for (let i = 0; i < 3; i++)
          await store.upsertMemory({
            userId: u,
            memoryId: memoryId(),
            entities: ents(["Ana", "person"], [place, "place"], [`Topic ${i}`, "topic"]),
            relations: [rel("Ana", place)],
          });
      await store.removeUser(a);
      for (const entity of ["Ana", "Lisbon", "Topic 0"])
        expect(await store.query({ userId: a, entity, depth: 3, limit: 100 })).toEqual({
          nodes: [],
          edges: [],
          memories: [],
        });
      const rb = await store.query({ userId: b, entity: "Ana", depth: 1, limit: 100 });
      expect(names(rb)).toEqual(["Ana", "Tokyo"]);
      expect(rb.memories).toHaveLength(3);
      expect(names(await store.query({ userId: b, entity: "Topic 1", depth: 1, limit: 100 }))).toEqual([
        "Topic 1",
      ]);
      // Idempotent, and the user can have a graph again afterwards.
      await store.removeUser(a);
      await store.upsertMemory({
        userId: a,
        memoryId: memoryId(),
        entities: ents(["Ana", "person"]),
        relations: [],
      });
      const again = await store.query({ userId: a, entity: "Ana", depth: 1, limit: 100 });
      expect(again.nodes.map((n) => [n.name, n.mentions])).toEqual([["Ana", 1]]);
    });

    test("relations supported by several memories have that weight; re-upserting the same memory changes nothing", async () => {
      const u = user();
      const m1 = memoryId();
      const m2 = memoryId();
      const g = { entities: ents(["Ana", "person"], ["Bob", "person"]), relations: [rel("Ana", "Bob")] };
      await store.upsertMemory({ userId: u, memoryId: m1, ...g });
      await store.upsertMemory({ userId: u, memoryId: m1, ...g });
      await store.upsertMemory({ userId: u, memoryId: m2, ...g });
      const r = await store.query({ userId: u, entity: "Ana", depth: 1, limit: 20 });
      expect(r.edges).toEqual([expect.objectContaining({ type: "co_occurs", weight: 2 })]);
      expect(nodeByName(r, "Ana")!.mentions).toBe(2);
      expect(r.memories.map((m) => m.memory_id)).toEqual([m2, m1]);
    });

    test("upserting a memory again replaces its previous entities and relations", async () => {
      const u = user();
      const m1 = memoryId();
      const m2 = memoryId();
      await store.upsertMemory({
        userId: u,
        memoryId: m1,
        entities: ents(["Ana", "person"], ["Bob", "person"], ["Old topic"]),
        relations: [rel("Ana", "Bob"), rel("Ana", "Old topic")],
      });
      await store.upsertMemory({
        userId: u,
        memoryId: m2,
        entities: ents(["Ana", "person"], ["Bob", "person"]),
        relations: [rel("Ana", "Bob")],
      });
      await store.upsertMemory({
        userId: u,
        memoryId: m1,
        entities: ents(["Ana", "person"], ["Carla", "person"]),
        relations: [rel("Ana", "Carla")],
      });
      const r = await store.query({ userId: u, entity: "Ana", depth: 1, limit: 20 });
      expect(names(r)).toEqual(["Ana", "Bob", "Carla"]);
      const w = Object.fromEntries(r.edges.map((e) => [r.nodes.find((x) => x.id === e.to)!.name, e.weight]));
      expect(w).toEqual({ Bob: 1, Carla: 1 });
      expect(nodeByName(r, "Bob")!.mentions).toBe(1);
      // "Old topic" is mentioned by no memory any more: gone.
      expect((await store.query({ userId: u, entity: "old topic", depth: 1, limit: 20 })).nodes).toEqual([]);
      const carla = await store.query({ userId: u, entity: "Carla", depth: 1, limit: 20 });
      // m1 mentions Carla and Ana, m2 only Ana (Carla's neighbour).
      expect(carla.memories.map((m) => [m.memory_id, m.entities.length])).toEqual([
        [m1, 2],
        [m2, 1],
      ]);
    });

    test("removeMemory takes back its mentions and relations and drops entities left unmentioned", async () => {
      const u = user();
      const m1 = memoryId();
      const m2 = memoryId();
      await store.upsertMemory({
        userId: u,
        memoryId: m1,
        entities: ents(["Ana", "person"], ["Lisbon", "place"]),
        relations: [rel("Ana", "Lisbon")],
      });
      await store.upsertMemory({
        userId: u,
        memoryId: m2,
        entities: ents(["Ana", "person"], ["Porto", "place"]),
        relations: [rel("Ana", "Porto")],
      });
      await store.removeMemory(u, m1);
      await store.removeMemory(u, m1); // twice is fine
      await store.removeMemory(u, memoryId()); // unknown memory is fine
      const r = await store.query({ userId: u, entity: "Ana", depth: 2, limit: 20 });
      expect(names(r)).toEqual(["Ana", "Porto"]);
      expect(r.nodes[0]!.mentions).toBe(1);
      expect(r.memories.map((m) => m.memory_id)).toEqual([m2]);
      expect((await store.query({ userId: u, entity: "Lisbon", depth: 1, limit: 20 })).nodes).toEqual([]);
      // An upsert with no entities is a removal.
      await store.upsertMemory({ userId: u, memoryId: m2, entities: [], relations: [] });
      expect((await store.query({ userId: u, entity: "Ana", depth: 1, limit: 20 })).nodes).toEqual([]);
    });

    test("the most specific type wins: topic then person is a person; person then place stays a person", async () => {
      const u = user();
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["Jordan", "topic"]),
        relations: [],
      });
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["jordan", "person"]),
        relations: [],
      });
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["Jordan", "place"]),
        relations: [],
      });
      const r = await store.query({ userId: u, entity: "JORDAN", depth: 1, limit: 20 });
      expect(r.nodes).toEqual([expect.objectContaining({ name: "Jordan", type: "person", mentions: 3 })]);
    });

    test("relations to entities outside the memory, and self-relations, are ignored", async () => {
      const u = user();
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["Ana", "person"]),
        relations: [rel("Ana", "Ghost"), rel("Ana", "ana")],
      });
      const r = await store.query({ userId: u, entity: "Ana", depth: 2, limit: 20 });
      expect(names(r)).toEqual(["Ana"]);
      expect(r.edges).toEqual([]);
    });

    test("limit caps nodes (nearest, then most mentioned first) and memories (most matching, then newest)", async () => {
      const u = user();
      const hub = "Hub";
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) {
        const m = memoryId();
        ids.push(m);
        // Spoke i is mentioned by i+1 memories' worth: spoke5 the most.
        await store.upsertMemory({
          userId: u,
          memoryId: m,
          entities: ents([hub], [`spoke${i}`]),
          relations: [rel(hub, `spoke${i}`)],
        });
      }
      for (let i = 3; i < 6; i++) {
        await store.upsertMemory({
          userId: u,
          memoryId: memoryId(),
          entities: ents([`spoke${i}`]),
          relations: [],
        });
      }
      const r = await store.query({ userId: u, entity: hub, depth: 1, limit: 3 });
      expect(r.nodes.map((x) => x.name)).toEqual(["Hub", "spoke3", "spoke4"]);
      expect(r.memories).toHaveLength(3);
      // Memories that mention two returned nodes come first, newest first among equals.
      expect(r.memories.map((m) => m.entities.length)).toEqual([2, 2, 1]);
      expect(r.memories[0]!.memory_id > r.memories[1]!.memory_id).toBe(true);
      expect(
        r.edges.every((e) => r.nodes.some((x) => x.id === e.from) && r.nodes.some((x) => x.id === e.to)),
      ).toBe(true);
    });

    test("bad input is invalid_input and changes nothing", async () => {
      const u = user();
      await store.upsertMemory({
        userId: u,
        memoryId: memoryId(),
        entities: ents(["Ana", "person"]),
        relations: [],
      });
      for (const depth of [0, 4, 1.5])
        await rejectsWith(store.query({ userId: u, entity: "Ana", depth, limit: 10 }), "invalid_input");
      for (const limit of [0, 101])
        await rejectsWith(store.query({ userId: u, entity: "Ana", depth: 1, limit }), "invalid_input");
      await rejectsWith(
        store.upsertMemory({ userId: u, memoryId: "not-a-uuid", entities: ents(["Bob"]), relations: [] }),
        "invalid_input",
      );
      await rejectsWith(
        store.upsertMemory({ userId: "", memoryId: memoryId(), entities: ents(["Bob"]), relations: [] }),
        "invalid_input",
      );
      await rejectsWith(
        store.upsertMemory({
          userId: u,
          memoryId: memoryId(),
          entities: [{ name: "Bob", type: "alien" as EntityType }],
          relations: [],
        }),
        "invalid_input",
      );
      await rejectsWith(store.removeMemory(u, "nope"), "invalid_input");
      expect((await store.query({ userId: u, entity: "Bob", depth: 1, limit: 10 })).nodes).toEqual([]);
      expect(names(await store.query({ userId: u, entity: "Ana", depth: 1, limit: 10 }))).toEqual(["Ana"]);
    });

    test("concurrent upserts of memories sharing entities keep counts right", async () => {
      const u = user();
      const ms = Array.from({ length: 8 }, () => memoryId());
      await Promise.all(
        ms.map((m, i) =>
          store.upsertMemory({
            userId: u,
            memoryId: m,
            entities: ents(["Shared", "organization"], [`own${i}`]),
            relations: [rel("Shared", `own${i}`)],
          }),
        ),
      );
      const r = await store.query({ userId: u, entity: "shared", depth: 1, limit: 100 });
      expect(r.nodes[0]).toMatchObject({ name: "Shared", mentions: 8, type: "organization" });
      expect(r.nodes).toHaveLength(9);
      expect(r.memories).toHaveLength(8);
    });
  });
}
