import { describe, expect, test } from "bun:test";
import {
  codeForStatus,
  DionysusError,
  type ErrorCode,
  ErrorCodes,
  fromProblem,
  isErrorCode,
  problemBody,
  toProblem,
} from "../../../src/core/errors.ts";

describe("fromProblem", () => {
  // [status, body, expected code, expected message]
  const table: Array<[number, unknown, ErrorCode, string]> = [
    [404, { code: "not_found", detail: "no memory m1" }, "not_found", "no memory m1"],
    // A known code wins over the status.
    [409, { code: "busy", detail: "port taken" }, "busy", "port taken"],
    [500, { code: "db_corrupt", detail: "bad file" }, "db_corrupt", "bad file"],
    // Unknown, missing or non-string codes fall back to the status.
    [400, { code: "no_such_code", detail: "x" }, "invalid_input", "x"],
    [401, {}, "unauthorized", "fallback"],
    [403, undefined, "forbidden", "fallback"],
    [404, null, "not_found", "fallback"],
    [409, { code: 7 }, "conflict", "fallback"],
    [413, "not an object", "payload_too_large", "fallback"],
    [415, {}, "unsupported_media_type", "fallback"],
    [418, {}, "invalid_input", "fallback"],
    [429, {}, "rate_limited", "fallback"],
    [500, {}, "internal", "fallback"],
    [502, {}, "unavailable", "fallback"],
    [503, {}, "unavailable", "fallback"],
    [504, {}, "unavailable", "fallback"],
    // Inherited object keys are not codes.
    [400, { code: "toString" }, "invalid_input", "fallback"],
    [400, { code: "__proto__" }, "invalid_input", "fallback"],
    // An OAuth error's description is its message.
    [400, { error: "invalid_grant", error_description: "expired" }, "invalid_input", "expired"],
  ];
  for (const [status, body, code, message] of table) {
    test(`${status} ${JSON.stringify(body)} → ${code}`, () => {
      const err = fromProblem(status, body, "fallback");
      expect(err).toBeInstanceOf(DionysusError);
      expect(err.code).toBe(code);
      expect(err.message).toBe(message);
      expect(err.status).toBe(status);
    });
  }

  test("is the inverse of toProblem for every code", () => {
    for (const code of Object.keys(ErrorCodes) as ErrorCode[]) {
      const original = new DionysusError(code, `failed with ${code}`);
      const wire = JSON.parse(problemBody(original, "/v1/x"));
      const back = fromProblem(original.status, wire, "unused");
      expect([back.code, back.message, back.status]).toEqual([code, original.message, original.status]);
    }
  });

  test("keeps the details given", () => {
    expect(fromProblem(429, {}, "slow", { retry_after_ms: 5 }).details).toEqual({ retry_after_ms: 5 });
  });
});

describe("codeForStatus and isErrorCode", () => {
  test("every code's own status maps back to a code of that status", () => {
    for (const status of new Set(Object.values(ErrorCodes)))
      expect(ErrorCodes[codeForStatus(status)]).toBe(status);
  });
  test("isErrorCode accepts the codes only", () => {
    expect(isErrorCode("not_found")).toBe(true);
    expect(isErrorCode("constructor")).toBe(false);
    expect(isErrorCode(404)).toBe(false);
  });
});

describe("problemBody", () => {
  test("is toProblem as JSON, with the instance", () => {
    const err = new DionysusError("not_found", "gone");
    expect(JSON.parse(problemBody(err, "req-1"))).toEqual(toProblem(err, "req-1"));
    expect(JSON.parse(problemBody(err)).instance).toBeUndefined();
  });
});
