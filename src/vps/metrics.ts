/** Prometheus text exposition of the VPS's own counters (`GET /metrics`). */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

export class Metrics {
  private readonly requests = new Map<string, number>();
  private readonly latency = new Map<string, { buckets: number[]; sum: number; count: number }>();
  private readonly gauges = new Map<string, { help: string; read: () => number }>();

  /** Records one finished request. `route` is the matched route pattern, never the raw path. */
  observe(method: string, route: string, status: number, seconds: number): void {
    const k = `${method}\u0000${route}\u0000${status}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
    const lk = `${method}\u0000${route}`;
    let h = this.latency.get(lk);
    if (!h) {
      h = { buckets: BUCKETS.map(() => 0), sum: 0, count: 0 };
      this.latency.set(lk, h);
    }
    for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.buckets[i]!++;
    h.sum += seconds;
    h.count++;
  }

  /** A gauge read at scrape time. */
  gauge(name: string, help: string, read: () => number): void {
    this.gauges.set(name, { help, read });
  }

  render(): string {
    const out: string[] = [];
    out.push("# HELP dionysus_http_requests_total HTTP requests by route and status.");
    out.push("# TYPE dionysus_http_requests_total counter");
    for (const [k, n] of this.requests) {
      const [method, route, status] = k.split("\u0000");
      out.push(
        `dionysus_http_requests_total{method="${esc(method!)}",route="${esc(route!)}",status="${status}"} ${n}`,
      );
    }
    out.push("# HELP dionysus_http_request_duration_seconds HTTP request latency.");
    out.push("# TYPE dionysus_http_request_duration_seconds histogram");
    for (const [k, h] of this.latency) {
      const [method, route] = k.split("\u0000");
      const labels = `method="${esc(method!)}",route="${esc(route!)}"`;
      BUCKETS.forEach((b, i) => {
        out.push(`dionysus_http_request_duration_seconds_bucket{${labels},le="${b}"} ${h.buckets[i]}`);
      });
      out.push(`dionysus_http_request_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      out.push(`dionysus_http_request_duration_seconds_sum{${labels}} ${h.sum}`);
      out.push(`dionysus_http_request_duration_seconds_count{${labels}} ${h.count}`);
    }
    for (const [name, g] of this.gauges) {
      out.push(`# HELP ${name} ${g.help}`);
      out.push(`# TYPE ${name} gauge`);
      out.push(`${name} ${g.read()}`);
    }
    return `${out.join("\n")}\n`;
  }
}
