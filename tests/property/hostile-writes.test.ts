/**
 * Hostile writes, randomized (fast-check): creates and updates with hostile tags, metadata and
 * content (NUL, lone surrogates, control characters, deep or large metadata, 1 MiB of distinct
 * words or of control characters) on a real edge store with a real sync engine, against a real
 * VPS (in this process, over a real socket, on a fresh PostgreSQL database). Some writes are
 * smuggled past the edge's checks straight into its sync queue, as a device from before the
 * limits would have queued them. Then the device syncs once, and:
 * - the sync succeeds and the queue is drained: nothing `queued` or `syncing` is left;
 * - every write the edge accepted arrives at the VPS and at a second device, exactly;
 * - a write refused at the edge is refused with a coded error (never a crash);
 * - a smuggled write is either stored as sent or `failed` with a reason, never retried forever.
 *
 * Replay a failure with DIONYSUS_FC_SEED (and DIONYSUS_FC_PATH) from the report fast-check prints.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import fc from "fast-check";
import { isDionysusError } from "../../src/core/errors.ts";
import { type LocalMemory, Tags } from "../../src/core/memory.ts";
import { validateMemoryFields } from "../../src/core/validate.ts";
import { TEST_DATABASE_URL } from "../helpers/harness.ts";
import { type InprocVps, startInprocVps } from "../helpers/inproc-vps.ts";

setDefaultTimeout(600_000);

const RUNS = Number(process.env.DIONYSUS_FC_RUNS ?? 12);
const MiB = 1024 * 1024;

/** `bytes` of distinct words: PostgreSQL cannot make a tsvector of all of it. */
function distinctWords(bytes: number): string {
  const words: string[] = [];
  let len = 0;
  for (let i = 0; len < bytes; i++) {
    const w = `q${i.toString(36)}`;
    words.push(w);
    len += w.length + 1;
  }
  return words.join(" ").slice(0, bytes).trim();
}

function nested(depth: number): Record<string, unknown> {
  let v: unknown = "leaf";
  for (let i = 0; i < depth; i++) v = { d: v };
  return v as Record<string, unknown>;
}

const nasty = fc.constantFrom(
  "\u0000",
  "\ud800",
  "\udfff",
  "\ud83d",
  "\u0001",
  "\u001f",
  "\u007f",
  "\\",
  '"',
  "\n",
  "é",
  "😀",
  "a-b",
  " ",
  "word",
);
const hostileString = fc
  .array(fc.oneof({ weight: 1, arbitrary: nasty }, { weight: 2, arbitrary: fc.string({ maxLength: 5 }) }), {
    maxLength: 6,
  })
  .map((parts) => parts.join(""));
const leaf = fc.oneof(hostileString, fc.double(), fc.integer(), fc.boolean(), fc.constant(null));
const { json } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    leaf,
    fc.array(tie("json"), { maxLength: 3 }),
    fc.dictionary(hostileString, tie("json"), { maxKeys: 3 }),
  ),
}));
const tagsArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.array(fc.oneof(hostileString, fc.constantFrom("work", "home")), { maxLength: 4 }),
  },
  { weight: 1, arbitrary: fc.array(fc.constant("t"), { minLength: 60, maxLength: 70 }) },
  { weight: 1, arbitrary: fc.array(fc.string({ minLength: 60, maxLength: 70 }), { maxLength: 2 }) },
);
const metadataArb = fc.oneof(
  { weight: 6, arbitrary: fc.dictionary(hostileString, json, { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 28, max: 36 }).map(nested) },
  { weight: 1, arbitrary: fc.constant("deep" as const) },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 60 * 1024, max: 70 * 1024 }).map((n) => ({ big: "m".repeat(n) })),
  },
);
type ContentSpec = string | { big: "words" | "controls" } | { controls: number };
const contentArb: fc.Arbitrary<ContentSpec> = fc.oneof(
  { weight: 8, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constant({ big: "words" as const }) },
  { weight: 1, arbitrary: fc.constant({ big: "controls" as const }) },
  // Around the JSON-encoded limit (2 MiB): 340..360 Ki control characters.
  {
    weight: 1,
    arbitrary: fc.integer({ min: 340 * 1024, max: 360 * 1024 }).map((controls) => ({ controls })),
  },
);

interface Write {
  kind: "create" | "update" | "smuggle";
  pick: number;
  content: ContentSpec;
  tags: string[];
  metadata: Record<string, unknown> | "deep";
}
const writeArb: fc.Arbitrary<Write> = fc.record({
  kind: fc.constantFrom("create", "create", "update", "smuggle"),
  pick: fc.nat({ max: 5 }),
  content: contentArb,
  tags: tagsArb,
  metadata: metadataArb,
});

const content = (c: ContentSpec): string =>
  typeof c === "string"
    ? c
    : "big" in c
      ? c.big === "words"
        ? distinctWords(MiB - 64)
        : "\u0001".repeat(MiB)
      : "\u0001".repeat(c.controls);
const metadata = (m: Write["metadata"]) => (m === "deep" ? nested(20_000) : m);

/** What a store holds after JSON: -0 and NaN become what JSON makes of them. */
const viaJson = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

interface Expected {
  content: string;
  tags: string[];
  metadata: Record<string, unknown>;
}

let vps: InprocVps;
const seen = { runs: 0, accepted: 0, refusedAtEdge: 0, smuggledStored: 0, smuggledFailed: 0 };

beforeAll(async () => {
  if (TEST_DATABASE_URL) vps = await startInprocVps();
});
afterAll(async () => {
  await vps?.stop();
});

async function run(writes: Write[]): Promise<void> {
  seen.runs++;
  const user = await vps.newUser();
  const a = await vps.device(user.key);
  const expected = new Map<string, Expected>();
  const smuggled = new Map<number, { id: string; data: Expected; valid: boolean }>();
  const live: string[] = [];
  let n = 0;

  for (const w of writes) {
    const fields = { content: content(w.content), tags: w.tags, metadata: metadata(w.metadata) };
    if (w.kind === "smuggle") {
      // A device from before the limits: the write went into the queue as it was.
      const placeholder = a.store.create({
        content: `placeholder ${++n}`,
        kind: "episodic",
        tags: [],
        metadata: {},
      });
      const [item] = a.store.queueItems("queued", 100_000).filter((q) => q.memory_id === placeholder.id);
      const data = {
        ...fields,
        kind: "episodic",
        created_at: placeholder.created_at,
        updated_at: placeholder.updated_at,
      };
      const conn = new Database(join(a.dir, "edge.db"));
      try {
        conn
          .query("UPDATE sync_queue SET payload = ? WHERE mutation_id = ?")
          .run(JSON.stringify(data), item!.mutation_id);
      } finally {
        conn.close();
      }
      // What the VPS will make of it: the protocol's tag schema (it trims), then the limits.
      const tags = Tags.safeParse(fields.tags);
      let valid = tags.success;
      try {
        if (tags.success) validateMemoryFields({ ...fields, tags: tags.data });
      } catch {
        valid = false;
      }
      const sent = { ...fields, tags: tags.data ?? [] };
      smuggled.set(item!.mutation_id, { id: placeholder.id, data: viaJson(sent), valid });
      continue;
    }
    let m: LocalMemory;
    try {
      if (w.kind === "update" && live.length > 0) m = a.store.update(live[w.pick % live.length]!, fields);
      else m = a.store.create({ ...fields, kind: "episodic" });
    } catch (err) {
      // Refused where it was written, with a code a user can act on.
      if (!isDionysusError(err)) throw err;
      expect(["invalid_input", "payload_too_large"]).toContain(err.code);
      seen.refusedAtEdge++;
      continue;
    }
    seen.accepted++;
    if (!live.includes(m.id)) live.push(m.id);
    expected.set(m.id, viaJson({ content: m.content, tags: m.tags, metadata: m.metadata }));
  }

  // One sync: it must succeed, and leave nothing behind.
  await a.engine.syncNow();
  expect(a.store.queueCounts()).toMatchObject({ queued: 0, syncing: 0 });
  const failed = a.store.queueItems("failed", 100_000);
  for (const f of failed) {
    // Only smuggled writes the limits refuse may fail, each with its reason.
    expect(smuggled.get(f.mutation_id)?.valid).toBe(false);
    expect(f.last_error ?? "").not.toBe("");
  }
  for (const [mutationId, s] of smuggled) {
    if (s.valid) {
      expected.set(s.id, s.data);
      seen.smuggledStored++;
    } else {
      expect(failed.map((f) => f.mutation_id)).toContain(mutationId);
      seen.smuggledFailed++;
    }
  }

  // Every accepted write is on the VPS, exactly as written; nothing refused is.
  const rows = await vps.pg.query<{
    id: string;
    content: string;
    tags: string[];
    metadata: Record<string, unknown>;
  }>(
    "select m.id, m.content, m.tags, m.metadata from memories m join users u on u.id = m.user_id where u.name = $1 and not m.deleted",
    [user.name],
  );
  const onVps = new Map(
    rows.rows.map((r) => [r.id, { content: r.content, tags: r.tags, metadata: r.metadata }]),
  );
  for (const s of smuggled.values()) if (!s.valid) expect(onVps.has(s.id)).toBe(false);
  for (const [id, want] of expected) expect(onVps.get(id)).toEqual(want);
  expect(onVps.size).toBe(expected.size);

  // And at a second device.
  const b = await vps.device(user.key);
  await b.engine.syncNow();
  for (const [id, want] of expected) {
    const got = b.store.get(id);
    expect(got && { content: got.content, tags: got.tags, metadata: got.metadata }).toEqual(want);
  }
  await a.close();
  await b.close();
}

test.skipIf(!TEST_DATABASE_URL)(
  "hostile writes never wedge the queue, and every valid one arrives at the VPS and another device",
  async () => {
    const seed = process.env.DIONYSUS_FC_SEED;
    const path = process.env.DIONYSUS_FC_PATH;
    // A fixed first run covers every outcome, whatever the random runs draw.
    const coverage: Write[] = [
      { kind: "create", pick: 0, content: "plain words", tags: ["work"], metadata: { a: 1 } },
      { kind: "create", pick: 0, content: "nul tag", tags: ["a\u0000b"], metadata: {} },
      { kind: "smuggle", pick: 0, content: "smuggled nul tag", tags: ["x\u0000y"], metadata: {} },
      { kind: "smuggle", pick: 0, content: "smuggled but fine", tags: ["home"], metadata: { ok: true } },
    ];
    await fc.assert(fc.asyncProperty(fc.array(writeArb, { minLength: 1, maxLength: 12 }), run), {
      numRuns: RUNS,
      endOnFailure: true,
      examples: [[coverage]],
      ...(seed ? { seed: Number(seed) } : {}),
      ...(path ? { path } : {}),
    });
    // The runs exercised each outcome (not all refusals, not all acceptances).
    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.refusedAtEdge).toBeGreaterThan(0);
    expect(seen.smuggledFailed).toBeGreaterThan(0);
    expect(seen.smuggledStored).toBeGreaterThan(0);
  },
);
