/**
 * The test harness's `createTestDatabase().drop()`: a connection still closing when the drop
 * starts (a pool's `end()` resolves before its clients are gone) must not be killed mid-goodbye,
 * which PostgreSQL reports to the closing client as an unhandled 57P01 error.
 */
import { describe, expect, test } from "bun:test";
import net from "node:net";
import { Client } from "pg";
import { createTestDatabase, TEST_DATABASE_URL } from "../helpers/harness.ts";

/** A TCP proxy to PostgreSQL that can hold back what the client sends (here: its Terminate). */
async function holdingProxy(target: URL) {
  const held: Buffer[] = [];
  let holding = false;
  let upstream: net.Socket | undefined;
  const sockets: net.Socket[] = [];
  // Half-open: the client's FIN (after its Terminate) must not close the way back to it.
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const up = net.connect(Number(target.port || 5432), target.hostname);
    upstream = up;
    sockets.push(client, up);
    client.on("data", (chunk: Buffer) => (holding ? held.push(chunk) : up.write(chunk)));
    up.on("data", (chunk) => client.write(chunk));
    client.on("end", () => {
      if (!holding) up.end();
    });
    up.on("close", () => client.destroy());
    client.on("error", () => {});
    up.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    hold() {
      holding = true;
    },
    release() {
      holding = false;
      for (const chunk of held.splice(0)) upstream?.write(chunk);
      upstream?.end();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!TEST_DATABASE_URL)("test database teardown", () => {
  test("drop() lets a closing connection finish instead of killing it (no 57P01 on the client)", async () => {
    const tdb = await createTestDatabase("dionysus_drop");
    const url = new URL(tdb.url);
    const proxy = await holdingProxy(url);
    const errors: unknown[] = [];
    const client = new Client({
      host: "127.0.0.1",
      port: proxy.port,
      user: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      database: url.pathname.slice(1),
    });
    client.on("error", (e) => errors.push(e));
    try {
      await client.connect();
      await client.query("select 1");
      // The client says goodbye, but its Terminate is still on the way when the drop starts.
      proxy.hold();
      const ended = client.end().catch(() => undefined);
      await tdb.drop({ onWait: () => proxy.release() });
      await ended;
      expect(errors.map(String)).toEqual([]);
    } finally {
      await proxy.close();
    }
  });
});
