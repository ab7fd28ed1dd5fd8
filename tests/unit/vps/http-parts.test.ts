import { describe, expect, test } from "bun:test";
import { normaliseUserCode, randomSecret, randomUserCode, sha256Hex } from "../../../src/vps/auth/secrets.ts";
import { escapeHtml, renderDevicePage } from "../../../src/vps/http/device-page.ts";
import { RateLimiter } from "../../../src/vps/http/rate-limit.ts";
import { Metrics } from "../../../src/vps/metrics.ts";
import { signWebhook, verifyWebhookSignature } from "../../../src/vps/push/webhooks.ts";

describe("secrets", () => {
  test("user codes avoid vowels and look-alikes; input is normalised", () => {
    for (let i = 0; i < 200; i++)
      expect(randomUserCode()).toMatch(/^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$/);
    expect(normaliseUserCode(" bcdf-ghjk ")).toBe("BCDFGHJK");
    expect(randomSecret("dny")).toMatch(/^dny_[A-Za-z0-9_-]{43}$/);
    expect(sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });
});

describe("device page", () => {
  test("escapes every interpolated value", () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    const html = renderDevicePage({
      code: '"><img src=x onerror=alert(1)>',
      username: "<b>",
      message: { text: "<script>", ok: false },
      device: { device_id: "d", device_name: "<i>tv</i>", platform: "<p>" },
    });
    expect(html).not.toContain("<img");
    expect(html).not.toContain("<script>");
    expect(html).not.toContain("<i>tv");
    expect(html).toContain("&lt;i&gt;tv&lt;/i&gt;");
  });
});

describe("rate limiter", () => {
  test("fixed window per key, with remaining and reset", () => {
    let t = 0;
    const rl = new RateLimiter(2, 60_000, () => t);
    expect(rl.hit("a")).toEqual({ allowed: true, limit: 2, remaining: 1, resetS: 60 });
    expect(rl.hit("a").allowed).toBe(true);
    t = 30_000;
    expect(rl.hit("a")).toEqual({ allowed: false, limit: 2, remaining: 0, resetS: 30 });
    expect(rl.hit("b").allowed).toBe(true);
    expect(rl.blocked("a")).toBe(true);
    t = 60_000;
    expect(rl.hit("a").allowed).toBe(true);
  });
});

describe("webhook signatures", () => {
  test("verify accepts the right secret and body within the tolerance only", () => {
    const body = '{"seq":1,"cursor":"e.1"}';
    const sig = signWebhook("s3cret-s3cret-s3cret", body, 1_000_000);
    expect(sig).toMatch(/^t=1000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhookSignature(sig, "s3cret-s3cret-s3cret", body, 1_000_100)).toBe(true);
    expect(verifyWebhookSignature(sig, "s3cret-s3cret-s3cret", body, 1_000_400)).toBe(false);
    expect(verifyWebhookSignature(sig, "other-secret-value", body, 1_000_100)).toBe(false);
    expect(verifyWebhookSignature("t=1,v1=zz", "x", body, 1)).toBe(false);
  });
});

describe("metrics", () => {
  test("Prometheus text with counters, histogram and gauges", () => {
    const m = new Metrics();
    m.observe("GET", "/v1/sync/pull", 200, 0.004);
    m.observe("GET", "/v1/sync/pull", 200, 0.2);
    m.gauge("dionysus_sse_connections", "Open streams.", () => 3);
    const text = m.render();
    expect(text).toContain('dionysus_http_requests_total{method="GET",route="/v1/sync/pull",status="200"} 2');
    expect(text).toContain(
      'dionysus_http_request_duration_seconds_bucket{method="GET",route="/v1/sync/pull",le="0.005"} 1',
    );
    expect(text).toContain('le="+Inf"} 2');
    expect(text).toContain("dionysus_sse_connections 3");
  });
});
