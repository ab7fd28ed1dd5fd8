/**
 * `dionysus export` and `dionysus import` as real CLI processes on real data dirs: both formats
 * round-trip, a re-import changes nothing, and a damaged file (bad JSON, invalid UTF-8, a newer
 * format, an invalid memory, a cut-off last line) is reported line by line while its good lines
 * go in and the stored data is untouched.
 */
import { afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LocalMemory } from "../../src/core/memory.ts";
import { cleanEnv, runCli, scratch } from "../helpers/harness.ts";

const cli = (args: string[], opts: Parameters<typeof runCli>[1] = {}) =>
  runCli(args, { ...opts, baseEnv: cleanEnv() });

setDefaultTimeout(60_000);
const tmp = scratch();
afterEach(() => tmp.cleanup());

const ok = (r: { code: number; stderr: string }) => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr}`);
};

async function ingest(dir: string, content: string, tags: string[] = []): Promise<LocalMemory> {
  const r = await cli(["ingest", "--json", ...tags.flatMap((t) => ["--tag", t]), "--data-dir", dir], {
    input: content,
  });
  ok(r);
  return LocalMemory.parse(JSON.parse(r.stdout));
}

/** Every live memory of a data dir, by id, as exported (the export is the full read). */
async function memoriesOf(dir: string): Promise<Map<string, LocalMemory>> {
  const r = await cli(["export", "--no-deleted", "--data-dir", dir]);
  ok(r);
  const lines = r.stdout.trimEnd().split("\n");
  expect(JSON.parse(lines[0]!)).toMatchObject({ dionysus: "export", format: 1 });
  const ms = lines.slice(1).map((l) => LocalMemory.parse(JSON.parse(l)));
  return new Map(ms.map((m) => [m.id, m]));
}

describe("dionysus export / import", () => {
  test("JSON Lines and Markdown round-trip, and a second import changes nothing", async () => {
    const src = tmp.dir();
    const a = await ingest(src, "Line one\n---\nnot front matter: a rule in the body ✓", ["x", "y z"]);
    const b = await ingest(src, "Tea at 5 with Ana", ["ana"]);
    const gone = await ingest(src, "to be forgotten");
    ok(await cli(["forget", gone.id, "--data-dir", src]));

    const file = join(tmp.dir(), "all.jsonl");
    const e = await cli(["export", "--out", file, "--data-dir", src]);
    ok(e);
    expect(e.stdout).toBe(`exported 3 memories to ${file} (jsonl)\n`); // the tombstone travels too
    expect(statSync(file).mode & 0o777).toBe(0o600); // it may hold private memories
    const dst = tmp.dir();
    const i = await cli(["import", file, "--json", "--data-dir", dst]);
    ok(i);
    expect(JSON.parse(i.stdout)).toMatchObject({ records: 3, created: 3, bad: 0, problems: [] });
    const got = await memoriesOf(dst);
    expect([...got.keys()].sort()).toEqual([a.id, b.id].sort());
    for (const m of [a, b])
      expect(got.get(m.id)).toMatchObject({
        content: m.content,
        tags: m.tags,
        kind: m.kind,
        created_at: m.created_at,
        updated_at: m.updated_at,
        origin: "local",
        source: "import",
        scope: m.scope,
        synced_at: null,
      });
    const again = await cli(["import", file, "--data-dir", dst]);
    ok(again);
    expect(again.stdout).toContain("0 new, 0 updated, 3 unchanged");

    const md = join(tmp.dir(), "notes");
    ok(await cli(["export", "--format", "markdown", "--out", md, "--tag", "x", "--data-dir", src]));
    expect(readdirSync(md)).toEqual([`${a.id}.md`]);
    expect(statSync(md).mode & 0o777).toBe(0o700);
    expect(statSync(join(md, `${a.id}.md`)).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(md, `${a.id}.md`), "utf8")).toStartWith(`---\nid: "${a.id}"\n`);
    const fromMd = tmp.dir();
    ok(await cli(["import", md, "--data-dir", fromMd]));
    expect((await memoriesOf(fromMd)).get(a.id)).toMatchObject({ content: a.content, tags: a.tags });
    // The Markdown of a memory that is already stored is unchanged, not a second copy.
    const twice = await cli(["import", md, "--data-dir", dst]);
    ok(twice);
    expect(twice.stdout).toContain("0 new, 0 updated, 1 unchanged");
    // Edited in Obsidian (same stamp, other content): a new edit, stamped now, queued for sync.
    const mdFile = join(md, `${a.id}.md`);
    writeFileSync(mdFile, readFileSync(mdFile, "utf8").replace("Line one", "Line one, edited"));
    const edited = await cli(["import", md, "--data-dir", dst]);
    ok(edited);
    expect(edited.stdout).toContain("0 new, 1 updated, 0 unchanged");
    const after = (await memoriesOf(dst)).get(a.id)!;
    expect(after.content).toStartWith("Line one, edited\n---");
    expect(after.hlc > a.hlc).toBe(true);
  });

  test("a damaged file: every bad line is reported by number, the good ones go in, nothing stored is touched", async () => {
    const dir = tmp.dir();
    const kept = await ingest(dir, "stored before the import");
    const src = tmp.dir();
    const good = await ingest(src, "a good line");
    const other = await ingest(src, "another good line");
    const file = join(tmp.dir(), "export.jsonl");
    ok(await cli(["export", "--out", file, "--data-dir", src]));
    const [header, l1, l2] = readFileSync(file, "utf8").trimEnd().split("\n");
    // The stored memory's id with other content and an older stamp: must not overwrite it.
    const olderTwin = JSON.stringify({
      ...JSON.parse(l1!),
      id: kept.id,
      content: "an older version",
      hlc: "000000000000001-000000-elsewhere",
    });
    const bytes = Buffer.concat([
      Buffer.from(`${header}\n${l1}\nnot json at all\n`),
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), // invalid UTF-8
      Buffer.from(`${JSON.stringify({ ...JSON.parse(l2!), format: 99 })}\n`),
      Buffer.from(`${JSON.stringify({ ...JSON.parse(l2!), content: "" })}\n`),
      Buffer.from(`${olderTwin}\n`),
      Buffer.from(l2!.slice(0, 40)), // cut off
    ]);
    writeFileSync(file, bytes);
    const r = await cli(["import", file, "--data-dir", dir]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toEqual([
      "dionysus: line 3: not valid JSON",
      "dionysus: line 4: not valid UTF-8",
      "dionysus: line 5: written by a newer dionysus (export format 99; this one reads up to 1)",
      "dionysus: line 6: content must not be empty",
      "dionysus: line 8: not valid JSON (the file looks truncated here)",
      "dionysus: 5 of 7 records were refused (listed above); the others were imported",
    ]);
    expect(r.stdout).toContain(
      "1 new, 0 updated, 0 unchanged, 1 older than the stored version (kept), 5 refused",
    );
    const after = await memoriesOf(dir);
    expect(after.get(kept.id)).toMatchObject({ content: kept.content, hlc: kept.hlc });
    expect(after.get(good.id)?.content).toBe("a good line");
    expect(after.has(other.id)).toBe(false);
    expect(after.size).toBe(2);

    const missing = await cli(["import", join(dir, "nope.jsonl"), "--data-dir", dir]);
    expect(missing.code).toBe(3);
    const emptyFile = join(tmp.dir(), "empty.jsonl");
    writeFileSync(emptyFile, "");
    const empty = await cli(["import", emptyFile, "--data-dir", dir]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain("is empty: not a Dionysus export");
    const emptyDir = await cli(["import", tmp.dir(), "--data-dir", dir]);
    expect(emptyDir.code).toBe(2);
    expect(emptyDir.stderr).toContain("holds no Markdown (.md) files");
    const usage = await cli(["export", "--format", "csv", "--data-dir", dir]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toBe("dionysus: --format must be jsonl or markdown\n");
  });

  test("scopes, occurred_at and private memories travel; a private one is never queued; --scope filters", async () => {
    const src = tmp.dir();
    const work = await cli([
      "ingest",
      "standup notes",
      "--scope",
      "work",
      "--occurred-at",
      "2026-11-01T09:00:00Z",
      "--json",
      "--data-dir",
      src,
    ]);
    ok(work);
    const secret = await cli(["ingest", "my diary", "--private", "--json", "--data-dir", src]);
    ok(secret);
    const w = LocalMemory.parse(JSON.parse(work.stdout));
    const p = LocalMemory.parse(JSON.parse(secret.stdout));
    const file = join(tmp.dir(), "all.jsonl");
    ok(await cli(["export", "--out", file, "--data-dir", src]));
    const scoped = await cli(["export", "--scope", "work", "--no-deleted", "--data-dir", src]);
    ok(scoped);
    expect(
      scoped.stdout
        .trimEnd()
        .split("\n")
        .slice(1)
        .map((l) => JSON.parse(l).id),
    ).toEqual([w.id]);
    const badScope = await cli(["export", "--scope", "Not A Scope!", "--data-dir", src]);
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toStartWith("dionysus: --scope: ");

    const dst = tmp.dir();
    ok(await cli(["import", file, "--data-dir", dst]));
    const got = await memoriesOf(dst);
    expect(got.get(w.id)).toMatchObject({
      scope: "work",
      occurred_at: "2026-11-01T09:00:00.000Z",
      source: "import",
      private: false,
    });
    expect(got.get(p.id)).toMatchObject({ content: "my diary", private: true });
    const status = JSON.parse((await cli(["sync", "status", "--json", "--data-dir", dst])).stdout);
    expect(status.queue.queued).toBe(1); // the shared one only
  });
});
