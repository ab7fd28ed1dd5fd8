/**
 * A network namespace for one side of a fault test, joined to the test's own (root) namespace by a
 * veth pair, with `tc netem` on both ends: loss, delay, reordering, and the link going down and up.
 * Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2 (`ip`, `tc`). Names are unique per run
 * so parallel runs never meet, and `destroy()` removes everything (call it in a `finally`).
 */
import { randomInt } from "node:crypto";

export interface NetLink {
  /** The namespace's name (`ip netns exec NAME …`). */
  ns: string;
  /** The address of the root namespace's end, as seen from the namespace. */
  hostIp: string;
  /** The address of the namespace's end. */
  nsIp: string;
  /** The command prefix that runs a program inside the namespace. */
  exec(argv: string[]): string[];
  /** Applies netem on both ends (`undefined` removes it), e.g. `loss 10% delay 30ms 10ms reorder 25%`. */
  netem(spec: string | undefined): void;
  /**
   * Drops `pct` % of the packets in both directions at random (nftables in the namespace; 0
   * removes the rule). Works without netem.
   */
  loss(pct: number): void;
  /** Packets {@link loss} has dropped since it was last set. */
  dropped(): number;
  /** Limits both ends to `rate` (e.g. `2mbit`) with a token bucket, which queues and delays (tbf). */
  slow(rate: string | undefined): void;
  /** Takes both ends of the link down or up. */
  setLink(up: boolean): void;
  destroy(): void;
}

function run(argv: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

function must(argv: string[]): void {
  const r = run(argv);
  if (!r.ok) throw new Error(`${argv.join(" ")}: ${r.err}`);
}

/**
 * Why network namespaces cannot be used here, or undefined when they can: tries to add and remove
 * one namespace and one veth pair.
 */
export function netnsUnavailable(): string | undefined {
  if (!Bun.which("ip") || !Bun.which("tc")) return "needs iproute2 (`ip` and `tc`)";
  if (process.getuid?.() !== 0)
    return "needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces";
  const probe = `dnp${randomInt(1e6)}`;
  const added = run(["ip", "netns", "add", probe]);
  if (!added.ok) return `needs CAP_SYS_ADMIN to create network namespaces (ip netns add: ${added.err})`;
  const veth = run(["ip", "link", "add", `${probe}a`, "type", "veth", "peer", "name", `${probe}b`]);
  run(["ip", "link", "del", `${probe}a`]);
  run(["ip", "netns", "del", probe]);
  if (!veth.ok) return `needs veth support (ip link add … type veth: ${veth.err})`;
  const netem = Bun.spawnSync(["tc", "qdisc", "help"], { stderr: "pipe" });
  if (netem.exitCode === null) return "needs tc";
  return undefined;
}

/** Whether this kernel has netem (CONFIG_NET_SCH_NETEM); tries it on a throwaway veth pair. */
export function netemAvailable(): boolean {
  const probe = `dnq${randomInt(1e6)}`;
  if (!run(["ip", "link", "add", `${probe}a`, "type", "veth", "peer", "name", `${probe}b`]).ok) return false;
  try {
    return run(["tc", "qdisc", "add", "dev", `${probe}a`, "root", "netem", "delay", "1ms"]).ok;
  } finally {
    run(["ip", "link", "del", `${probe}a`]);
  }
}

/** Whether nftables (`nft`) can filter in a namespace, for {@link NetLink.loss}. */
export function nftAvailable(): boolean {
  return Bun.which("nft") !== null;
}

export function createNetLink(): NetLink {
  const id = randomInt(1, 1e6);
  const ns = `dns${id}`;
  const host = `dvh${id}`;
  const peer = `dve${id}`;
  // A /30 of 10.200.0.0/14 picked at random; parallel runs pick different ones.
  const n = randomInt(0, 1 << 16) * 4;
  const base = `10.${200 + (n >> 16)}.${(n >> 8) & 255}`;
  const hostIp = `${base}.${(n & 255) + 1}`;
  const nsIp = `${base}.${(n & 255) + 2}`;
  const inNs = (argv: string[]) => ["ip", "netns", "exec", ns, ...argv];
  const destroy = () => {
    run(["ip", "link", "del", host]);
    run(["ip", "netns", "del", ns]);
  };
  try {
    must(["ip", "netns", "add", ns]);
    must(["ip", "link", "add", host, "type", "veth", "peer", "name", peer]);
    must(["ip", "link", "set", peer, "netns", ns]);
    must(["ip", "addr", "add", `${hostIp}/30`, "dev", host]);
    must(["ip", "link", "set", host, "up"]);
    must(inNs(["ip", "addr", "add", `${nsIp}/30`, "dev", peer]));
    must(inNs(["ip", "link", "set", peer, "up"]));
    must(inNs(["ip", "link", "set", "lo", "up"]));
  } catch (err) {
    destroy();
    throw err;
  }
  return {
    ns,
    hostIp,
    nsIp,
    exec: inNs,
    netem(spec) {
      for (const [dev, wrap] of [
        [host, (a: string[]) => a],
        [peer, inNs],
      ] as const) {
        if (spec === undefined) run(wrap(["tc", "qdisc", "del", "dev", dev, "root"]));
        else must(wrap(["tc", "qdisc", "replace", "dev", dev, "root", "netem", ...spec.split(" ")]));
      }
    },
    loss(pct) {
      run(inNs(["nft", "delete", "table", "inet", "dfault"]));
      if (pct <= 0) return;
      must(inNs(["nft", "add", "table", "inet", "dfault"]));
      for (const hook of ["input", "output"]) {
        must(
          inNs(["nft", "add", "chain", "inet", "dfault", hook, `{ type filter hook ${hook} priority 0 ; }`]),
        );
        must(
          inNs([
            "nft",
            "add",
            "rule",
            "inet",
            "dfault",
            hook,
            hook === "input" ? "iifname" : "oifname",
            "!=",
            "lo",
            "numgen",
            "random",
            "mod",
            "100",
            "<",
            String(pct),
            "counter",
            "drop",
          ]),
        );
      }
    },
    dropped() {
      const r = Bun.spawnSync(inNs(["nft", "list", "table", "inet", "dfault"]), { stdout: "pipe" });
      return [...r.stdout.toString().matchAll(/counter packets (\d+)/g)].reduce(
        (n, m) => n + Number(m[1]),
        0,
      );
    },
    slow(rate) {
      for (const [dev, wrap] of [
        [host, (a: string[]) => a],
        [peer, inNs],
      ] as const) {
        if (rate === undefined) run(wrap(["tc", "qdisc", "del", "dev", dev, "root"]));
        else
          must(
            wrap([
              "tc",
              "qdisc",
              "replace",
              "dev",
              dev,
              "root",
              "tbf",
              "rate",
              rate,
              "burst",
              "16kb",
              "latency",
              "300ms",
            ]),
          );
      }
    },
    setLink(up) {
      const state = up ? "up" : "down";
      must(["ip", "link", "set", host, state]);
      must(inNs(["ip", "link", "set", peer, state]));
    },
    destroy,
  };
}
