/**
 * A TCP proxy between one device and the VPS that a test can cut: take the device offline
 * (connections refused, open ones dropped), or break the next push or pull mid-way, either before
 * the VPS has the whole request or after the VPS answered but before the device got the answer.
 */
import net from "node:net";

export interface CutRule {
  route: "push" | "pull";
  /** `request`: the VPS gets half the request, then the connection drops (nothing applied).
   * `response`: the VPS gets the request and answers; the answer is lost on the way back.
   * `hold`: the VPS gets the request and answers; the answer is held back (never delivered), so
   * the device waits with the request in flight for as long as the test likes. */
  phase: "request" | "response" | "hold";
}

export interface CutProxy {
  url: string;
  /** Offline: new connections are refused and open ones dropped. */
  setOnline(online: boolean): void;
  /** Silent: a link that died without a reset (a cable pulled): connections stay open, and no
   * byte goes through in either direction until it is turned off again. */
  setSilent(silent: boolean): void;
  /** Breaks the next matching request (one rule at a time; a new one replaces the old). */
  cutNext(rule: CutRule | undefined): void;
  /** How many cuts have fired so far. */
  cuts(): number;
  close(): Promise<void>;
}

const REQUEST_LINE = /^(GET|POST) \/v1\/sync\/(push|pull)[ ?]/;

export async function startCutProxy(upstreamPort: number, upstreamHost = "127.0.0.1"): Promise<CutProxy> {
  const sockets = new Set<net.Socket>();
  let online = true;
  let silent = false;
  let pending: CutRule | undefined;
  let fired = 0;

  const server = net.createServer((client) => {
    if (!online) {
      client.destroy();
      return;
    }
    const upstream = net.connect(upstreamPort, upstreamHost);
    sockets.add(client);
    sockets.add(upstream);
    let dropAnswer = false;
    let holdAnswer = false;
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("data", (chunk: Buffer) => {
      if (!online) return drop();
      if (silent) return;
      // fetch does not pipeline: a chunk that starts with a request line starts a request.
      const m = REQUEST_LINE.exec(chunk.subarray(0, 64).toString("latin1"));
      if (m && pending && pending.route === m[2]) {
        const rule = pending;
        pending = undefined;
        fired++;
        if (rule.phase === "request") {
          upstream.write(chunk.subarray(0, chunk.length >> 1), () => drop());
          return;
        }
        if (rule.phase === "hold") holdAnswer = true;
        else dropAnswer = true;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (holdAnswer || silent) return;
      if (dropAnswer) return drop();
      client.write(chunk);
    });
    client.on("close", () => {
      upstream.destroy();
      sockets.delete(client);
    });
    upstream.on("close", () => {
      client.destroy();
      sockets.delete(upstream);
    });
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    setOnline(value) {
      online = value;
      if (!value) for (const s of sockets) s.destroy();
    },
    setSilent(value) {
      silent = value;
    },
    cutNext(rule) {
      pending = rule;
    },
    cuts: () => fired,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
