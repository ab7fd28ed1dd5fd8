import { describe, expect, test } from "bun:test";
import {
  AskEvent,
  AskRequest,
  GraphQueryRequest,
  Job,
  SearchRequest,
} from "../../../src/core/protocol/heavy.ts";

describe("heavy wire schemas", () => {
  test("SearchRequest defaults to hybrid, 10 results, and trims the query", () => {
    expect(SearchRequest.parse({ query: "  coffee  " })).toEqual({
      query: "coffee",
      mode: "hybrid",
      limit: 10,
      time: "boost",
    });
  });

  test.each([{ query: "" }, { query: "   " }, { query: "x", mode: "fuzzy" }, { query: "x", limit: 0 }])(
    "SearchRequest refuses %p",
    (body) => {
      expect(SearchRequest.safeParse(body).success).toBe(false);
    },
  );

  test("GraphQueryRequest accepts depth 1..3 only", () => {
    expect(GraphQueryRequest.parse({ entity: "Ana" })).toEqual({ entity: "Ana", depth: 1, limit: 20 });
    expect(GraphQueryRequest.parse({ entity: "Ana", depth: "3" }).depth).toBe(3);
    for (const depth of [0, 4, 1.5, -1]) {
      const r = GraphQueryRequest.safeParse({ entity: "Ana", depth });
      expect(r.success).toBe(false);
    }
    expect(GraphQueryRequest.safeParse({ entity: " " }).success).toBe(false);
  });

  test("Job needs a known status; AskRequest needs a question", () => {
    const job = {
      id: "01890a5d-ac96-774b-bcce-b302099a8057",
      kind: "consolidate",
      status: "queued",
      created_at: "2026-11-27T10:00:00.000Z",
      finished_at: null,
      result: null,
      error: null,
    };
    expect(Job.parse(job).status).toBe("queued");
    expect(Job.safeParse({ ...job, status: "paused" }).success).toBe(false);
    expect(AskRequest.safeParse({ question: "" }).success).toBe(false);
    expect(AskEvent.parse({ type: "delta", text: "hi" })).toEqual({ type: "delta", text: "hi" });
  });
});
