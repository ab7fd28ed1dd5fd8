/**
 * A tiny client for an edge daemon's local API, run as its own process so that a test can reach a
 * daemon inside another network namespace (`ip netns exec NS bun tests/helpers/edge-client.ts …`).
 *
 *   bun tests/helpers/edge-client.ts URL DATA_DIR '[{"method":"POST","path":"/v1/memories","body":{…}}]'
 *
 * Sends the requests in order and prints one JSON array of `{status, body}` on stdout.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const [url, dataDir, requests] = process.argv.slice(2);
if (!url || !dataDir || !requests) {
  process.stderr.write("usage: edge-client.ts URL DATA_DIR REQUESTS_JSON\n");
  process.exit(2);
}
const token = readFileSync(join(dataDir, "api-token"), "utf8").trim();
const out: { status: number; body: unknown }[] = [];
for (const r of JSON.parse(requests) as { method: string; path: string; body?: unknown }[]) {
  try {
    const res = await fetch(`${url}${r.path}`, {
      method: r.method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(r.body === undefined ? {} : { "content-type": "application/json" }),
      },
      ...(r.body === undefined ? {} : { body: JSON.stringify(r.body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    out.push({ status: res.status, body: text ? JSON.parse(text) : null });
  } catch (err) {
    out.push({ status: 0, body: String(err) });
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`);
