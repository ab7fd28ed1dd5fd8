import { describe, expect, test } from "bun:test";
import { DionysusError, type ErrorCode } from "../../../src/core/errors.ts";
import { readNdjsonLines, readSse, sendAuthed, vpsFailure } from "../../../src/edge/vps-http.ts";

const style = { prefix: "VPS answered" };
const answer = (status: number, headers: Record<string, string> = {}) =>
  new Response(null, { status, statusText: "why", headers });

describe("vpsFailure", () => {
  // [status, body, expected code]
  const table: Array<[number, unknown, ErrorCode]> = [
    // The problem's own code when known...
    [400, { code: "invalid_input", detail: "d" }, "invalid_input"],
    [409, { code: "conflict", detail: "d" }, "conflict"],
    [413, { code: "payload_too_large", detail: "d" }, "payload_too_large"],
    // ...the status when not...
    [413, "not json", "payload_too_large"],
    [404, { code: "nope" }, "not_found"],
    // ...but any 5xx is `unavailable` to the edge, a 401 `unauthorized`, a 429 `rate_limited`.
    [500, { code: "internal", detail: "d" }, "unavailable"],
    [503, { code: "invalid_input", detail: "d" }, "unavailable"],
    [401, { code: "forbidden", detail: "d" }, "unauthorized"],
    [429, { code: "invalid_input", detail: "d" }, "rate_limited"],
  ];
  for (const [status, body, code] of table)
    test(`${status} ${JSON.stringify(body)} → ${code}`, () => {
      const err = vpsFailure(answer(status), body, style);
      expect(err.code).toBe(code);
      expect(err.details?.http_status).toBe(status);
    });

  test("words the message with the client's prefix and the detail, else the status text", () => {
    expect(vpsFailure(answer(400), { detail: "bad cursor" }, style).message).toBe(
      "VPS answered 400: bad cursor",
    );
    expect(vpsFailure(answer(502), undefined, style).message).toBe("VPS answered 502: why");
  });

  test("carries Retry-After as retry_after_ms", () => {
    expect(vpsFailure(answer(429, { "retry-after": "7" }), {}, style).details?.retry_after_ms).toBe(7_000);
  });
});

describe("sendAuthed", () => {
  function tokens(refreshes: boolean) {
    const log: string[] = [];
    let token = "t1";
    return {
      log,
      source: {
        accessToken: async () => token,
        refresh: async () => {
          log.push("refresh");
          if (refreshes) token = "t2";
          return refreshes;
        },
      },
    };
  }
  const send = (call: () => Promise<Response>) => call();

  test("a 401 refreshes once and sends again with the new token", async () => {
    const t = tokens(true);
    const seen: string[] = [];
    const res = await sendAuthed(
      t.source,
      async (h) => {
        seen.push(h.authorization!);
        return new Response(null, { status: seen.length === 1 ? 401 : 200 });
      },
      send,
    );
    expect(res.status).toBe(200);
    expect(seen).toEqual(["Bearer t1", "Bearer t2"]);
    expect(t.log).toEqual(["refresh"]);
  });

  test("a second 401 is returned, not retried again", async () => {
    const t = tokens(true);
    let calls = 0;
    const unauthorized = async () => {
      calls++;
      return new Response(null, { status: 401 });
    };
    const res = await sendAuthed(t.source, unauthorized, send);
    expect([res.status, calls, t.log.length]).toEqual([401, 2, 1]);
  });

  test("a refused refresh is unauthorized", async () => {
    const t = tokens(false);
    const err = await sendAuthed(t.source, async () => new Response(null, { status: 401 }), send).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DionysusError);
    expect((err as DionysusError).code).toBe("unauthorized");
  });
});

/** A body delivered in the given chunks. */
function chunked(...chunks: string[]): ReadableStream {
  const bytes = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const chunk of chunks) c.enqueue(bytes.encode(chunk));
      c.close();
    },
  });
}

async function all<T>(gen: AsyncGenerator<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of gen) out.push(x);
  return out;
}

describe("readers", () => {
  test("NDJSON: lines split across chunks, blanks skipped, a last line without newline dropped", async () => {
    expect(await all(readNdjsonLines(chunked('{"a":', '1}\n\n  {"b":2}  \n{"c"')))).toEqual([
      '{"a":1}',
      '{"b":2}',
    ]);
  });

  test("SSE: events across chunks with CRLF, multi-line data, ids; events without data skipped", async () => {
    const body = chunked("event: job\r\nid: 4\r\ndata: a\r\n", "data: b\r\n\r\n: ping\n\n", "data: x\n\n");
    expect(await all(readSse(body))).toEqual([
      { event: "job", data: "a\nb", id: "4" },
      { event: "message", data: "x", id: undefined },
    ]);
  });
});
