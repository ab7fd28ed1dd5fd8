/** The edge's cache of VPS answers: expiry, TTL 0, the entry cap, and a cache that cannot open. */
import { afterEach, beforeEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HeavyCache, MAX_CACHE_ENTRIES } from "../../../src/edge/heavy/cache.ts";

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dionysus-cache-"));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test("an entry is fresh for ttl seconds, then gone; TTL 0 stores nothing", () => {
  let now = 1_000_000;
  const cache = new HeavyCache({ path: join(dir, "c.db"), ttlS: 300, now: () => now });
  cache.put("k", { a: 1 });
  expect(cache.get("k")).toEqual({ a: 1 });
  now += 299_999;
  expect(cache.get("k")).toEqual({ a: 1 });
  now += 1;
  expect(cache.get("k")).toBeUndefined();
  cache.close();
  const off = new HeavyCache({ path: join(dir, "c.db"), ttlS: 0, now: () => now });
  off.put("k2", 1);
  expect(off.get("k2")).toBeUndefined();
  off.close();
});

test("shared by two handles on one file (daemon and CLI); clear() empties it", () => {
  const a = new HeavyCache({ path: join(dir, "c.db"), ttlS: 60 });
  const b = new HeavyCache({ path: join(dir, "c.db"), ttlS: 60 });
  a.put("x", [1, 2]);
  expect(b.get("x")).toEqual([1, 2]);
  b.clear();
  expect(a.get("x")).toBeUndefined();
  a.close();
  b.close();
});

test(`at most ${MAX_CACHE_ENTRIES} entries are kept, the oldest go first`, () => {
  let now = 1;
  const cache = new HeavyCache({ path: join(dir, "c.db"), ttlS: 1e9, now: () => now });
  for (let i = 0; i < MAX_CACHE_ENTRIES + 60; i++) {
    now++;
    cache.put(`k${i}`, i);
  }
  expect(cache.get("k0")).toBeUndefined();
  expect(cache.get(`k${MAX_CACHE_ENTRIES + 59}`)).toBe(MAX_CACHE_ENTRIES + 59);
  cache.close();
});

test("a cache file that cannot be opened is ignored, not an error", () => {
  const path = join(dir, "not-a-file");
  mkdirSync(path);
  const logs: string[] = [];
  const cache = new HeavyCache({ path, ttlS: 60, log: (m) => logs.push(m) });
  cache.put("k", 1);
  expect(cache.get("k")).toBeUndefined();
  cache.clear();
  expect(logs.length).toBeGreaterThan(0);
});
