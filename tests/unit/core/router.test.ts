import { describe, expect, test } from "bun:test";
import type { RecallRequest } from "../../../src/core/protocol/edge-api.ts";
import {
  classifyOperation,
  type EdgeState,
  fallbackRecall,
  graphCacheKey,
  isFresh,
  isNaturalLanguage,
  planRecall,
  type RecallPlan,
  recallCacheKey,
  resolveMode,
} from "../../../src/core/router.ts";

const ONLINE: EdgeState = { online: true, authenticated: true, linked: true };
const OFFLINE: EdgeState = { online: false, authenticated: true, linked: true };
/** Logged in once, but the VPS refused the credentials: `dionysus login` again. */
const REAUTH: EdgeState = { online: true, authenticated: false, linked: true };
/** A local-only device: never logged in to a VPS (no credentials at all). */
const NEVER_LOGGED_IN: EdgeState = { online: true, authenticated: false, linked: false };
const LOGGED_OUT_STATES = [REAUTH, NEVER_LOGGED_IN];

const req = (
  query: string,
  mode: RecallRequest["mode"] = "auto",
  route: RecallRequest["route"] = "auto",
) => ({
  query,
  mode,
  route,
});

describe("isNaturalLanguage / resolveMode", () => {
  test.each([
    "what did Ana say about the trip",
    "Where is the spare key",
    "who's coming on Friday",
    "coffee?",
    "tell me about Lisbon",
    "notes from the meeting with the design team",
  ])("%p reads as natural language", (q) => {
    expect(isNaturalLanguage(q)).toBe(true);
    expect(resolveMode("auto", q)).toBe("hybrid");
  });

  test.each(["coffee", "Ana Lisbon", "dentist appointment march", "2026 taxes receipt", "", "*** ()"])(
    "%p reads as keywords",
    (q) => {
      expect(isNaturalLanguage(q)).toBe(false);
      expect(resolveMode("auto", q)).toBe("keyword");
    },
  );

  test("an explicit mode is never changed", () => {
    expect(resolveMode("keyword", "what did Ana say?")).toBe("keyword");
    expect(resolveMode("semantic", "coffee")).toBe("semantic");
    expect(resolveMode("hybrid", "coffee")).toBe("hybrid");
  });
});

describe("planRecall, route auto", () => {
  test("keyword stays local, online or not", () => {
    for (const state of [ONLINE, OFFLINE, ...LOGGED_OUT_STATES]) {
      expect(planRecall(req("coffee", "keyword"), state)).toEqual({
        where: "local",
        mode: "keyword",
        wanted: "keyword",
        degraded: false,
      });
      expect(planRecall(req("coffee"), state).where).toBe("local");
    }
  });

  test("semantic and hybrid go to the VPS when online and logged in", () => {
    expect(planRecall(req("coffee", "semantic"), ONLINE)).toEqual({
      where: "vps",
      mode: "semantic",
      wanted: "semantic",
    });
    expect(planRecall(req("coffee", "hybrid"), ONLINE)).toMatchObject({ where: "vps", mode: "hybrid" });
    expect(planRecall(req("what did Ana say?"), ONLINE)).toMatchObject({ where: "vps", mode: "hybrid" });
  });

  test("offline, semantic runs on the device in the same mode, degraded with the reason", () => {
    const plan = planRecall(req("coffee", "semantic"), OFFLINE);
    expect(plan).toMatchObject({ where: "local", mode: "semantic", degraded: true, reason: "offline" });
    if (plan.where === "local" && plan.degraded) expect(plan.message).toContain("unreachable");
  });

  test("re-authentication needed, auto hybrid degrades with reason unauthenticated", () => {
    expect(planRecall(req("where is the key?"), REAUTH)).toMatchObject({
      where: "local",
      mode: "hybrid",
      degraded: true,
      reason: "unauthenticated",
      wanted: "hybrid",
    });
  });

  test("logged out wins over offline as the reason", () => {
    expect(
      planRecall(req("x", "semantic"), { online: false, authenticated: false, linked: true }),
    ).toMatchObject({ reason: "unauthenticated" });
  });
});

describe("planRecall on a device never logged in to a VPS", () => {
  test.each([
    ["a natural-language query, route auto", req("where is the spare key?"), "hybrid"],
    ["a long description, route auto", req("notes from the meeting with the design team"), "hybrid"],
    ["a natural-language query, route local", req("what did Ana say?", "auto", "local"), "hybrid"],
    ["keywords", req("spare key"), "keyword"],
  ] as const)("mode auto with %s is local search (a question hybrid), not degraded", (_, r, mode) => {
    const local: RecallPlan = { where: "local", mode, wanted: mode, degraded: false };
    expect(planRecall(r, NEVER_LOGGED_IN)).toEqual(local);
    expect(planRecall(r, { ...NEVER_LOGGED_IN, online: false })).toEqual(local);
  });

  test("an explicit semantic or hybrid mode runs on the device in that mode, not degraded", () => {
    for (const mode of ["semantic", "hybrid"] as const)
      expect(planRecall(req("spare key", mode), NEVER_LOGGED_IN)).toEqual({
        where: "local",
        mode,
        wanted: mode,
        degraded: false,
      });
  });

  test("route vps is still unavailable (503)", () => {
    expect(planRecall(req("where is the key?", "auto", "vps"), NEVER_LOGGED_IN)).toMatchObject({
      where: "unavailable",
      reason: "unauthenticated",
    });
  });
});

describe("planRecall, forced routes", () => {
  test("route local forces local, in the mode asked, not degraded", () => {
    for (const mode of ["keyword", "semantic", "hybrid"] as const)
      expect(planRecall(req("coffee", mode, "local"), ONLINE)).toEqual({
        where: "local",
        mode,
        wanted: mode,
        degraded: false,
      });
  });

  test("route vps forces the VPS, keyword included", () => {
    expect(planRecall(req("coffee", "keyword", "vps"), ONLINE)).toEqual({
      where: "vps",
      mode: "keyword",
      wanted: "keyword",
    });
    expect(planRecall(req("coffee", "auto", "vps"), ONLINE)).toMatchObject({ where: "vps", mode: "keyword" });
  });

  test("route vps while offline or logged out is unavailable (503), never a silent local answer", () => {
    expect(planRecall(req("coffee", "semantic", "vps"), OFFLINE)).toMatchObject({
      where: "unavailable",
      reason: "offline",
    });
    for (const state of LOGGED_OUT_STATES)
      expect(planRecall(req("coffee", "keyword", "vps"), state)).toMatchObject({
        where: "unavailable",
        reason: "unauthenticated",
      });
  });
});

describe("fallbackRecall", () => {
  const plan = { where: "vps", mode: "semantic", wanted: "semantic" } as const;
  test("route auto answers on the device in the same mode, degraded with vps_failed and the detail", () => {
    const f = fallbackRecall(plan, "auto", "timeout after 5000 ms");
    expect(f).toMatchObject({ where: "local", mode: "semantic", degraded: true, reason: "vps_failed" });
    if (f.where === "local" && f.degraded) expect(f.message).toContain("timeout after 5000 ms");
  });
  test("route vps becomes unavailable", () => {
    expect(fallbackRecall(plan, "vps", "HTTP 502")).toMatchObject({
      where: "unavailable",
      reason: "vps_failed",
    });
  });
});

describe("classifyOperation", () => {
  test("by id, recent and keyword are local in every state", () => {
    for (const op of ["by_id", "recent", "keyword"] as const) {
      for (const state of [ONLINE, OFFLINE, ...LOGGED_OUT_STATES])
        expect(classifyOperation(op, state)).toEqual({ where: "local" });
    }
  });

  test("graph, consolidate and ask go to the VPS, and are unavailable without it", () => {
    for (const op of ["graph", "consolidate", "ask"] as const) {
      expect(classifyOperation(op, ONLINE)).toEqual({ where: "vps" });
      expect(classifyOperation(op, OFFLINE)).toMatchObject({ where: "unavailable", reason: "offline" });
      for (const state of LOGGED_OUT_STATES)
        expect(classifyOperation(op, state)).toMatchObject({
          where: "unavailable",
          reason: "unauthenticated",
        });
    }
    const p = classifyOperation("consolidate", OFFLINE);
    if (p.where === "unavailable")
      expect(p.message).toBe("consolidation run on the VPS and the VPS is unreachable");
  });
});

describe("cache keys and freshness", () => {
  test("case, spacing and punctuation do not change the recall key; mode, limit and scope do", () => {
    const a = recallCacheKey({ query: "Coffee  with ANA?", mode: "hybrid", limit: 10 }, "user-1");
    expect(recallCacheKey({ query: "coffee with ana", mode: "hybrid", limit: 10 }, "user-1")).toBe(a);
    expect(recallCacheKey({ query: "coffee with ana", mode: "semantic", limit: 10 }, "user-1")).not.toBe(a);
    expect(recallCacheKey({ query: "coffee with ana", mode: "hybrid", limit: 5 }, "user-1")).not.toBe(a);
    expect(recallCacheKey({ query: "coffee with ana", mode: "hybrid", limit: 10 }, "user-2")).not.toBe(a);
    expect(recallCacheKey({ query: "coffee with bob", mode: "hybrid", limit: 10 }, "user-1")).not.toBe(a);
  });

  test("graph keys ignore the entity's case and spacing", () => {
    expect(graphCacheKey({ entity: " Ana  Lima ", depth: 2, limit: 20 })).toBe(
      graphCacheKey({ entity: "ana lima", depth: 2, limit: 20 }),
    );
    expect(graphCacheKey({ entity: "ana", depth: 2, limit: 20 })).not.toBe(
      graphCacheKey({ entity: "ana", depth: 3, limit: 20 }),
    );
  });

  test("isFresh: fresh until the TTL has passed; TTL 0 disables", () => {
    expect(isFresh(1_000, 300, 1_000)).toBe(true);
    expect(isFresh(1_000, 300, 300_999)).toBe(true);
    expect(isFresh(1_000, 300, 301_000)).toBe(false);
    expect(isFresh(1_000, 0, 1_000)).toBe(false);
    expect(isFresh(5_000, 300, 1_000)).toBe(false);
  });
});
