/**
 * Hostile writes at the VPS, on real PostgreSQL and on embedded PGlite: every mutation the
 * database could not store is rejected on its own (for good, with its reason) while the rest of
 * its batch applies, and a long text of distinct words is stored and indexed instead of failing.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { sql } from "kysely";
import type { PushResult } from "../../src/core/protocol/sync.ts";
import { createAuthService, type Principal } from "../../src/vps/auth/service.ts";
import type { VpsDatabase } from "../../src/vps/db/database.ts";
import { createSyncService } from "../../src/vps/sync/service.ts";
import { TestDevice } from "../helpers/memories.ts";

export interface HostileBackend {
  vdb: VpsDatabase;
  close(): Promise<void>;
}

const MiB = 1024 * 1024;

/** `bytes` of distinct words: a tsvector of all of it would pass PostgreSQL's 1 MiB limit. */
export function distinctWords(bytes: number): string {
  const words: string[] = [];
  let len = 0;
  for (let i = 0; len < bytes; i++) {
    const w = i.toString(36);
    words.push(w);
    len += w.length + 1;
  }
  return words.join(" ").slice(0, bytes).trim();
}

export function nested(depth: number): Record<string, unknown> {
  let v: unknown = "leaf";
  for (let i = 0; i < depth; i++) v = { a: v };
  return v as Record<string, unknown>;
}

export function vpsHostileContract(label: string, open: () => Promise<HostileBackend>): void {
  describe(`VPS hostile writes: ${label}`, () => {
    let backend: HostileBackend;
    let auth: ReturnType<typeof createAuthService>;
    let sync: ReturnType<typeof createSyncService>;

    beforeAll(async () => {
      backend = await open();
      auth = createAuthService(backend.vdb.db, { access_token_ttl_s: 3600, refresh_token_ttl_s: 86400 });
      sync = createSyncService(backend.vdb.db, { max_content_bytes: MiB, max_clock_skew_ms: 60_000 });
    });
    afterAll(async () => {
      await backend?.close();
    });

    async function signedIn() {
      const name = `u${crypto.randomUUID().slice(0, 8)}`;
      await auth.createUser(name, "correct horse");
      const key = await auth.createApiKey(name);
      const tokens = await auth.tokenForApiKey(key.key, { device_id: "dev-a" });
      const principal = (await auth.authenticate(tokens.access_token)) as Principal;
      return { principal, device: new TestDevice("dev-a") };
    }

    function write(
      device: TestDevice,
      fields: { content?: string; tags?: string[]; metadata?: Record<string, unknown> },
    ) {
      const m = device.create(fields.content ?? "plain");
      return { ...m, data: { ...m.data, tags: fields.tags ?? [], metadata: fields.metadata ?? {} } };
    }

    async function pulledContents(userId: string): Promise<string[]> {
      const pulled = await sync.pull(userId, { limit: 100 });
      if (pulled.status !== "ok") throw new Error("expected ok");
      return pulled.changes.map((c) => c.content.slice(0, 40));
    }

    test("NUL, lone surrogates, deep metadata and escaped-oversized content are rejected one by one", async () => {
      const { principal, device } = await signedIn();
      const batch = [
        write(device, { content: "good one" }),
        write(device, { tags: ["a\u0000b"] }),
        write(device, { tags: ["\ud800"] }),
        write(device, { metadata: { "key\u0000": 1 } }),
        write(device, { metadata: { list: ["fine", "lone \udc00"] } }),
        write(device, { metadata: { "\ud83d": "lone high surrogate key" } }),
        write(device, { metadata: nested(20_000) }),
        write(device, { content: "\u0001".repeat(MiB) }),
        write(device, { content: "good two", tags: ["😀"], metadata: { "😀": { nested: [1, "two"] } } }),
      ];
      const r = await sync.push(principal, batch);
      const results = r.response.results;
      expect(results.map((x) => x.status)).toEqual(["applied", ...new Array(7).fill("rejected"), "applied"]);
      const reasons = results.slice(1, 8).map((x: PushResult) => x.reason);
      expect(reasons).toEqual([
        "data.tags: tags[0] must not contain NUL characters",
        "data.tags: tags[0] is not valid Unicode (lone surrogate)",
        expect.stringContaining("NUL") as unknown as string,
        "data.metadata: metadata.list[1] is not valid Unicode (lone surrogate)",
        expect.stringContaining("lone surrogate") as unknown as string,
        expect.stringContaining("nested deeper than 32") as unknown as string,
        expect.stringContaining("JSON-encoded") as unknown as string,
      ]);
      for (const x of results.slice(1, 8)) expect(x.retryable).toBe(false);
      expect(results[7]!.code).toBe("payload_too_large");
      expect(r.response.last_mutation_id).toBe(9);
      expect(await pulledContents(principal.user_id)).toEqual(["good one", "good two"]);
    });

    test("1 MiB of distinct words is stored whole and found by a word near its start", async () => {
      const { principal, device } = await signedIn();
      const text = distinctWords(MiB - 16);
      const r = await sync.push(principal, [
        write(device, { content: text }),
        write(device, { content: "after" }),
      ]);
      expect(r.response.results.map((x) => x.status)).toEqual(["applied", "applied"]);
      const found = await sql<{ id: string; n: number }>`
        select id, length(content) as n from memories
        where user_id = ${principal.user_id} and tsv @@ to_tsquery('english', 'zz')`.execute(backend.vdb.db);
      expect(found.rows.map((x) => Number(x.n))).toEqual([text.length]);
    });

    test("a write the database refuses is isolated: rejected for good with its reason, the rest apply in order", async () => {
      const { principal, device } = await signedIn();
      // A real database-side refusal that validation cannot foresee: a trigger raising a data
      // exception (SQLSTATE 22023) for some contents, and a non-data error for others.
      await sql`
        create or replace function hostile_poison() returns trigger language plpgsql as $$
        begin
          if new.content like 'poison%' then
            raise exception 'poisoned content' using errcode = '22023';
          end if;
          if new.content like 'broken%' then
            raise exception 'not about the data' using errcode = 'P0001';
          end if;
          return new;
        end $$`.execute(backend.vdb.db);
      await sql`drop trigger if exists hostile_poison on memories`.execute(backend.vdb.db);
      await sql`
        create trigger hostile_poison before insert or update on memories
        for each row execute function hostile_poison()`.execute(backend.vdb.db);
      const batch = ["a", "poison 1", "b", "c", "poison 2", "d"].map((content) => write(device, { content }));
      const r = await sync.push(principal, batch);
      const results = r.response.results;
      expect(results.map((x) => [x.index, x.mutation_id, x.status])).toEqual([
        [0, 1, "applied"],
        [1, 2, "rejected"],
        [2, 3, "applied"],
        [3, 4, "applied"],
        [4, 5, "rejected"],
        [5, 6, "applied"],
      ]);
      expect(results[1]).toMatchObject({ code: "invalid_input", retryable: false });
      expect(results[1]!.reason).toContain("22023");
      expect(results[1]!.reason).toContain("poisoned content");
      expect(r.response.last_mutation_id).toBe(6);
      const pulled = await sync.pull(principal.user_id, { limit: 100 });
      if (pulled.status !== "ok") throw new Error("expected ok");
      expect(pulled.changes.map((c) => [c.content, c.seq])).toEqual([
        ["a", 1],
        ["b", 2],
        ["c", 3],
        ["d", 4],
      ]);
      // A replay changes nothing: the applied ones are duplicates, the refused ones are refused again
      // (never taken for another history of the device).
      const replay = await sync.push(principal, batch);
      expect(replay.response.results.map((x) => x.status)).toEqual([
        "duplicate",
        "rejected",
        "duplicate",
        "duplicate",
        "rejected",
        "duplicate",
      ]);
      expect(replay.response.results[1]).toMatchObject({ code: "invalid_input", retryable: false });
      // An error that is not about the data still fails the push (the device retries later).
      const next = [write(device, { content: "e" }), write(device, { content: "broken" })];
      await expect(sync.push(principal, next)).rejects.toThrow("not about the data");
      expect(await pulledContents(principal.user_id)).toEqual(["a", "b", "c", "d"]);
      await sql`drop trigger hostile_poison on memories`.execute(backend.vdb.db);
    });
  });
}
