import { Database } from "bun:sqlite";
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalMemory } from "../../src/core/memory.ts";
import { EdgeHealth, RecallResponse } from "../../src/core/protocol/edge-api.ts";
import { VERSION } from "../../src/core/version.ts";
import { cleanEnv, edgeAuth, runCli, scratch, serve } from "../helpers/harness.ts";

/** The CLI without any DIONYSUS_* variable of the caller's. */
const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...opts, baseEnv: cleanEnv() });

// Each CLI run is a fresh process (about half a second here); give the multi-step tests room.
setDefaultTimeout(60_000);

const tmp = scratch();
afterEach(() => tmp.cleanup());

const ok = (r: { code: number; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
};

/** A refused command prints exactly one line on stderr and nothing on stdout. */
function refused(r: { code: number; stdout: string; stderr: string }, code: number, mentions: string) {
  expect(r.code).toBe(code);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toStartWith("dionysus: ");
  expect(lines[0]!.toLowerCase()).toContain(mentions.toLowerCase());
}

async function statusJson(dir: string) {
  const r = await cli(["status", "--json", "--data-dir", dir]);
  ok(r);
  return JSON.parse(r.stdout) as {
    mode: string;
    memories: number;
    queue: { queued: number };
    device_id: string;
    daemon: { url: string } | null;
  };
}

describe("dionysus CLI without a daemon (direct database access)", () => {
  test("recall reads a time in the query: --time boost (default), filter, off; a bad --time is refused", async () => {
    const dir = tmp.dir();
    for (const [content, at] of [
      ["Nate made coconut ice cream", "2022-11-09T18:00:00Z"],
      ["Nate made coconut ice cream again, coconut ice cream", "2023-03-01T12:00:00Z"],
    ] as const)
      ok(await cli(["ingest", content, "--occurred-at", at, "--data-dir", dir]));
    const ask = async (...flags: string[]) => {
      const r = await cli([
        "recall",
        "coconut",
        "ice",
        "cream",
        "on",
        "9",
        "November,",
        "2022",
        ...flags,
        "--data-dir",
        dir,
      ]);
      ok(r);
      return r.stdout;
    };
    const filtered = RecallResponse.parse(JSON.parse(await ask("--time", "filter", "--json")));
    expect(filtered.results.map((h) => h.memory.content)).toEqual(["Nate made coconut ice cream"]);
    expect(filtered.time).toMatchObject({ phrase: "on 9 November, 2022", use: "filter" });
    const boosted = RecallResponse.parse(JSON.parse(await ask("--json")));
    expect(boosted.results[0]?.memory.content).toBe("Nate made coconut ice cream");
    expect(boosted.results).toHaveLength(2);
    const off = RecallResponse.parse(JSON.parse(await ask("--time", "off", "--json")));
    expect(off.time).toBeUndefined();
    expect(await ask()).toContain(
      'time: "on 9 November, 2022" read as 2022-11-09 to 2022-11-10 (UTC, boost)',
    );
    refused(await cli(["recall", "coconut", "--time", "sometimes", "--data-dir", dir]), 2, "--time");
  });

  test("ingest (argument and stdin), recall, get, list, forget, status", async () => {
    const dir = tmp.dir();
    const a = await cli([
      "ingest",
      "Coffee with Ana at the science museum",
      "--tag",
      "ana",
      "--tag",
      "museum",
      "--data-dir",
      dir,
    ]);
    ok(a);
    expect(a.stdout).toMatch(
      /^Stored [0-9a-f-]{36} \(episodic, 37 bytes, tags ana, museum\); queued for sync\.\n$/,
    );

    const b = await cli(["ingest", "--json", "--kind", "identity", "--data-dir", dir], {
      input: "I prefer tea over coffee in the evening.\n",
    });
    ok(b);
    const fromStdin = LocalMemory.parse(JSON.parse(b.stdout));
    expect(fromStdin).toMatchObject({
      content: "I prefer tea over coffee in the evening.",
      kind: "identity",
      origin: "local",
      source: "cli",
    });

    const r = await cli(["recall", "coffee", "museum", "--json", "--data-dir", dir]);
    ok(r);
    const answer = RecallResponse.parse(JSON.parse(r.stdout));
    expect(answer.routed).toBe("local");
    expect(answer.results.map((h) => h.memory.content)).toEqual([
      "Coffee with Ana at the science museum",
      "I prefer tea over coffee in the evening.",
    ]);
    const human = await cli(["recall", "museum", "--data-dir", dir]);
    ok(human);
    expect(human.stdout).toContain("**museum**");
    expect(human.stdout).toContain("1 memory in");

    const got = await cli(["get", fromStdin.id, "--json", "--data-dir", dir]);
    ok(got);
    expect(LocalMemory.parse(JSON.parse(got.stdout)).id).toBe(fromStdin.id);
    const gotHuman = await cli(["get", fromStdin.id, "--data-dir", dir]);
    expect(gotHuman.stdout).toStartWith("I prefer tea over coffee in the evening.\n");
    expect(gotHuman.stdout).toContain("not synced yet");

    const list = await cli(["list", "--recent", "1", "--json", "--data-dir", dir]);
    ok(list);
    expect((JSON.parse(list.stdout) as { memories: { id: string }[] }).memories.map((m) => m.id)).toEqual([
      fromStdin.id,
    ]);

    const forget = await cli(["forget", fromStdin.id, "--data-dir", dir]);
    ok(forget);
    expect(forget.stdout).toContain(`Forgot ${fromStdin.id}`);
    refused(await cli(["get", fromStdin.id, "--data-dir", dir]), 3, "no memory");
    refused(await cli(["forget", fromStdin.id, "--data-dir", dir]), 3, "no memory");

    const status = await statusJson(dir);
    expect(status).toMatchObject({ mode: "direct", memories: 1, daemon: null });
    expect(status.queue.queued).toBe(3); // create, create, delete
    const statusHuman = await cli(["status", "--data-dir", dir]);
    expect(statusHuman.stdout).toContain("daemon    not running");
    expect(statusHuman.stdout).toContain("3 queued");
  });

  test("bad input: one clear line, a non-zero exit, and nothing stored", async () => {
    const dir = tmp.dir();
    ok(await cli(["ingest", "the one memory", "--data-dir", dir]));
    refused(await cli(["ingest", "", "--data-dir", dir]), 2, "empty");
    refused(await cli(["ingest", "--data-dir", dir], { input: " \n\n  " }), 2, "empty");
    refused(
      await cli(["ingest", "--data-dir", dir], {
        input: new Uint8Array([0x68, 0x69, 0x20, 0xc3, 0x28, 0xff, 0x0a]),
      }),
      2,
      "not valid UTF-8",
    );
    refused(
      await cli(["ingest", "x".repeat(2000), "--data-dir", dir], {
        env: { DIONYSUS_MAX_CONTENT_BYTES: "1000" },
      }),
      2,
      "limit",
    );
    refused(await cli(["ingest", "ok", "--kind", "dream", "--data-dir", dir]), 2, "--kind");
    refused(await cli(["ingest", "ok", "--tag", "", "--data-dir", dir]), 2, "tag");
    refused(await cli(["recall", "anything", "--limit", "0", "--data-dir", dir]), 2, "limit");
    refused(await cli(["recall", "anything", "--limit", "101", "--data-dir", dir]), 2, "limit");
    refused(await cli(["list", "--recent", "abc", "--data-dir", dir]), 2, "recent");
    refused(await cli(["get", "01900000-0000-7000-8000-000000000000", "--data-dir", dir]), 3, "no memory");
    const status = await statusJson(dir);
    expect(status.memories).toBe(1);
    expect(status.queue.queued).toBe(1);
  });

  test.each(['"', "*", "foo AND (", "NEAR(", "-x", "'; drop table memories; --", "🍕"])(
    "recall %p answers (maybe nothing), never an error",
    async (q) => {
      const dir = tmp.dir();
      ok(await cli(["ingest", "foo fighters near the river", "--data-dir", dir]));
      const r = await cli(["recall", "--json", "--data-dir", dir, "--", q]);
      ok(r);
      expect(Array.isArray(RecallResponse.parse(JSON.parse(r.stdout)).results)).toBe(true);
    },
  );

  test("never logged in to a VPS: recall of a question is plain local search, not degraded", async () => {
    const dir = tmp.dir();
    ok(await cli(["ingest", "The spare key is under the blue flower pot", "--data-dir", dir]));
    const question = ["recall", "where", "is", "the", "spare", "key?", "--data-dir", dir];
    const check = async () => {
      const json = await cli([...question, "--json"]);
      ok(json);
      const raw = JSON.parse(json.stdout) as Record<string, unknown>;
      expect(raw.degraded ?? false).toBe(false);
      expect(raw.reason).toBeUndefined();
      const answer = RecallResponse.parse(raw);
      expect(answer.routed).toBe("local");
      expect(answer.results[0]?.memory.content).toContain("spare key");
      const human = await cli(question);
      ok(human);
      expect(human.stdout).toContain("1 memory in");
      expect(human.stdout).toContain("(local)");
      expect(human.stdout).not.toContain("degraded");
      expect(human.stdout).not.toContain("note:");
      // Semantic search runs on the device too: by meaning, not degraded.
      const semantic = await cli(["recall", "door key", "--mode", "semantic", "--data-dir", dir]);
      ok(semantic);
      expect(semantic.stdout).toContain("(local)");
      expect(semantic.stdout).toContain("spare key");
      expect(semantic.stdout).not.toContain("degraded");
    };
    await check(); // direct database access
    const d = tmp.track(await serve(dir));
    expect((await statusJson(dir)).mode).toBe("daemon");
    await check(); // through the daemon's POST /v1/recall
    expect(await d.stop("SIGTERM")).toBe(0);
  });

  test("DIONYSUS_HOME chooses the data dir; --version prints the version", async () => {
    const dir = tmp.dir();
    ok(await cli(["ingest", "kept in DIONYSUS_HOME"], { env: { DIONYSUS_HOME: dir } }));
    expect(existsSync(join(dir, "edge.db"))).toBe(true);
    expect((await statusJson(dir)).memories).toBe(1);
    const v = await cli(["--version"]);
    ok(v);
    expect(v.stdout.trim()).toBe(VERSION);
  });

  test("a corrupt database is refused with a clear line and left untouched", async () => {
    const dir = tmp.dir();
    writeFileSync(join(dir, "edge.db"), "this is not a database at all, just my notes\n".repeat(100));
    const before = readFileSync(join(dir, "edge.db"));
    refused(await cli(["status", "--data-dir", dir]), 6, "not a SQLite database");
    refused(await cli(["ingest", "hello", "--data-dir", dir]), 6, "untouched");
    const s = await cli(["serve", "--port", "0", "--data-dir", dir]);
    expect(s.code).toBe(6);
    expect(readFileSync(join(dir, "edge.db")).equals(before)).toBe(true);
    expect(existsSync(join(dir, "daemon.json"))).toBe(false);
  });
});

describe("dionysus serve and the CLI through it", () => {
  test("the CLI uses the running daemon; a second daemon is refused; SIGTERM stops cleanly", async () => {
    const dir = tmp.dir();
    const d = tmp.track(await serve(dir));
    const health = EdgeHealth.parse(await (await fetch(`${d.url}/health`)).json());
    expect(health).toMatchObject({ status: "ok", version: VERSION, online: false });
    const info = JSON.parse(readFileSync(join(dir, "daemon.json"), "utf8")) as { pid: number; port: number };
    expect(info).toMatchObject({ pid: d.pid, port: d.port });
    expect(statSync(join(dir, "daemon.json")).mode & 0o077).toBe(0);

    const ing = await cli(["ingest", "--json", "--data-dir", dir], { input: "Written through the daemon" });
    ok(ing);
    const m = LocalMemory.parse(JSON.parse(ing.stdout));
    // The daemon stored it: its API returns it.
    const viaApi = await fetch(`${d.url}/v1/memories/${m.id}`, { headers: edgeAuth(dir) });
    expect(LocalMemory.parse(await viaApi.json()).content).toBe("Written through the daemon");

    const status = await statusJson(dir);
    expect(status).toMatchObject({ mode: "daemon", memories: 1, device_id: health.device_id });
    expect(status.daemon?.url).toBe(d.url);

    const r = await cli(["recall", "daemon", "--json", "--data-dir", dir]);
    expect(RecallResponse.parse(JSON.parse(r.stdout)).results[0]?.memory.id).toBe(m.id);
    refused(await cli(["recall", "daemon", "--limit", "500", "--data-dir", dir]), 2, "limit");
    refused(await cli(["get", "01900000-0000-7000-8000-000000000000", "--data-dir", dir]), 3, "no memory");
    refused(await cli(["ingest", "--data-dir", dir], { input: new Uint8Array([0xff, 0xfe]) }), 2, "UTF-8");
    ok(await cli(["forget", m.id, "--data-dir", dir]));
    expect((await fetch(`${d.url}/v1/memories/${m.id}`, { headers: edgeAuth(dir) })).status).toBe(404);

    const second = await cli(["serve", "--port", "0", "--data-dir", dir]);
    refused(second, 5, "already running");

    expect(await d.stop("SIGTERM")).toBe(0);
    expect(existsSync(join(dir, "daemon.json"))).toBe(false);
    // Afterwards the CLI opens the database directly and sees everything the daemon wrote.
    const after = await statusJson(dir);
    expect(after).toMatchObject({ mode: "direct", memories: 0 });
    expect(after.queue.queued).toBe(2);
  });

  test("a daemon.json left by a killed daemon does not block the CLI or the next daemon", async () => {
    const dir = tmp.dir();
    const d = tmp.track(await serve(dir));
    ok(await cli(["ingest", "before the crash", "--data-dir", dir]));
    expect(await d.stop("SIGKILL")).not.toBe(0);
    expect(existsSync(join(dir, "daemon.json"))).toBe(true);
    expect((await statusJson(dir)).mode).toBe("direct");
    const d2 = tmp.track(await serve(dir));
    expect((await statusJson(dir)).mode).toBe("daemon");
    expect(
      (await (await fetch(`${d2.url}/v1/memories?recent=5`, { headers: edgeAuth(dir) })).json()) as unknown,
    ).toMatchObject({
      memories: [{ content: "before the crash" }],
    });
    expect(await d2.stop("SIGINT")).toBe(0);
  });

  test("CLI processes writing directly while the daemon writes leave a consistent database", async () => {
    const dir = tmp.dir();
    const d = tmp.track(await serve(dir));
    // Hide daemon.json so that these CLI processes open the database themselves, beside the daemon.
    renameSync(join(dir, "daemon.json"), join(dir, "daemon.json.hidden"));
    const viaHttp = Array.from({ length: 40 }, (_, i) =>
      fetch(`${d.url}/v1/memories`, {
        method: "POST",
        headers: edgeAuth(dir, { "Content-Type": "application/json" }),
        body: JSON.stringify({ content: `concurrent http write ${i}` }),
      }).then((r) => r.status),
    );
    const viaCli = Array.from({ length: 6 }, (_, i) =>
      cli(["ingest", `concurrent cli write ${i}`, "--data-dir", dir]),
    );
    const [statuses, runs] = await Promise.all([Promise.all(viaHttp), Promise.all(viaCli)]);
    expect(statuses.every((s) => s === 201)).toBe(true);
    for (const r of runs) ok(r);
    const recalled = RecallResponse.parse(
      await (
        await fetch(`${d.url}/v1/recall`, {
          method: "POST",
          headers: edgeAuth(dir, { "Content-Type": "application/json" }),
          body: JSON.stringify({ query: "concurrent", limit: 100 }),
        })
      ).json(),
    );
    expect(recalled.results).toHaveLength(46);
    renameSync(join(dir, "daemon.json.hidden"), join(dir, "daemon.json"));
    expect(await d.stop()).toBe(0);

    const db = new Database(join(dir, "edge.db"), { readonly: true });
    expect(db.query("PRAGMA integrity_check").values()).toEqual([["ok"]]);
    const ids = db
      .query("SELECT mutation_id FROM sync_queue ORDER BY mutation_id")
      .values()
      .map((r) => r[0]);
    expect(ids).toEqual(Array.from({ length: 46 }, (_, i) => i + 1));
    const stamps = db
      .query("SELECT hlc FROM sync_queue ORDER BY mutation_id")
      .values()
      .map((r) => String(r[0]));
    expect(new Set(stamps).size).toBe(46);
    expect([...stamps].sort()).toEqual(stamps);
    db.close();
  });
});

describe("scopes, filters and private memories in the CLI", () => {
  test("ingest --scope/--occurred-at/--private/--meta; list and recall filters; DIONYSUS_SCOPE", async () => {
    const dir = tmp.dir();
    const work = await cli([
      "ingest",
      "--json",
      "planning the release notes",
      "--scope",
      "Work/Release",
      "--occurred-at",
      "2026-02-27T09:00:00Z",
      "--meta",
      "priority=2",
      "--tag",
      "plan",
      "--data-dir",
      dir,
    ]);
    ok(work);
    expect(LocalMemory.parse(JSON.parse(work.stdout))).toMatchObject({
      scope: "work/release",
      occurred_at: "2026-02-27T09:00:00.000Z",
      metadata: { priority: 2 },
      source: "cli",
      private: false,
    });
    const home = await cli(["ingest", "--private", "planning the garden", "--data-dir", dir], {
      env: { DIONYSUS_SCOPE: "home" },
    });
    ok(home);
    expect(home.stdout).toContain("scope home");
    expect(home.stdout).toContain("private");

    const listed = async (args: string[], env: Record<string, string> = {}) => {
      const r = await cli(["list", "--json", ...args, "--data-dir", dir], { env });
      ok(r);
      return (JSON.parse(r.stdout) as { memories: LocalMemory[] }).memories.map((m) => m.content).sort();
    };
    expect(await listed(["--scope", "work/*"])).toEqual(["planning the release notes"]);
    expect(await listed(["--meta", "priority=2", "--tag", "plan"])).toEqual(["planning the release notes"]);
    expect(await listed(["--source", "cli", "--since", "1h"])).toHaveLength(2);
    // The default scope narrows reads; --scope '*' reads everything.
    expect(await listed([], { DIONYSUS_SCOPE: "home" })).toEqual(["planning the garden"]);
    expect(await listed(["--scope", "*"], { DIONYSUS_SCOPE: "home" })).toHaveLength(2);

    const r = await cli(["recall", "planning", "--json", "--scope", "home", "--data-dir", dir]);
    ok(r);
    expect(RecallResponse.parse(JSON.parse(r.stdout)).results.map((h) => h.memory.content)).toEqual([
      "planning the garden",
    ]);
  });

  test("bad scopes, times and filters: exit 2 naming the flag, nothing stored", async () => {
    const dir = tmp.dir();
    ok(await cli(["ingest", "the one memory", "--data-dir", dir]));
    refused(await cli(["ingest", "x", "--scope", "Not A Scope!", "--data-dir", dir]), 2, "--scope");
    refused(
      await cli(["ingest", "x", "--occurred-at", "last tuesday", "--data-dir", dir]),
      2,
      "--occurred-at",
    );
    refused(await cli(["ingest", "x", "--meta", "novalue", "--data-dir", dir]), 2, "--meta");
    refused(await cli(["recall", "x", "--since", "7x", "--data-dir", dir]), 2, "--since");
    refused(await cli(["recall", "x", "--since", "1h", "--until", "2h", "--data-dir", dir]), 2, "--since");
    refused(await cli(["list", "--scope", "a//b", "--data-dir", dir]), 2, "--scope");
    refused(await cli(["list", "--kind", "dream", "--data-dir", dir]), 2, "--kind");
    refused(await cli(["list", "--source", "me", "--data-dir", dir]), 2, "--source");
    refused(await cli(["list", "--data-dir", dir], { env: { DIONYSUS_SCOPE: "Bad Scope" } }), 2, "scope");
    expect((await statusJson(dir)).memories).toBe(1);
  });
});
