import { describe, expect, test } from "bun:test";
import { type Resolution, type ResolveOptions, resolve, type Version } from "../../../src/core/conflict.ts";
import { formatHlc, parseHlc } from "../../../src/core/hlc.ts";

interface V extends Version {
  content: string;
}

const h = (ms: number, node: string) => formatHlc({ ms, counter: 0, node });
const v = (hlc: string, opts: Partial<V> = {}): V => ({
  hlc,
  deleted: false,
  origin_device: parseHlc(hlc)!.node,
  content: "x",
  ...opts,
});
const tomb = (hlc: string): V => v(hlc, { deleted: true, content: "" });
const sameContent = (a: V, b: V) =>
  (a.deleted && b.deleted) || (a.deleted === b.deleted && a.content === b.content);

/** The edge: only local writes are contested; its own older versions are history. */
const edge = (
  incomingBase: string | null | undefined,
  local: boolean,
  currentBase: string | null = null,
): ResolveOptions<V> => ({
  incomingBase,
  contestable: local,
  withoutBase: "conflict",
  currentBase,
  ownNode: "me",
  sameState: sameContent,
});
/** The VPS: every stored version is contested; without a base, only another device's. */
const vps = (incomingBase: string | null | undefined): ResolveOptions<V> => ({
  incomingBase,
  withoutBase: "other-device",
});

const T1 = h(1, "a");
const T2 = h(2, "b");
const T3 = h(3, "a");

const rows: Array<[string, V | undefined, V, ResolveOptions<V>, Resolution]> = [
  ["edge: a new memory", undefined, v(T1), edge(undefined, false), { winner: "incoming", conflict: false }],
  ["vps: a new memory", undefined, v(T1), vps(null), { winner: "incoming", conflict: false }],
  [
    "edge: the same stamp (an echo)",
    v(T1),
    v(T1, { content: "y" }),
    edge(null, true),
    { winner: "same", conflict: false },
  ],
  ["vps: the same stamp (a resend)", v(T1), v(T1), vps(undefined), { winner: "same", conflict: false }],
  // newer incoming, with a base
  [
    "vps: newer, based on the current",
    v(T1),
    v(T2, { content: "y" }),
    vps(T1),
    { winner: "incoming", conflict: false },
  ],
  [
    "vps: newer, based on another version",
    v(T1),
    v(T2, { content: "y" }),
    vps(h(0, "b")),
    { winner: "incoming", conflict: true },
  ],
  [
    "vps: newer create over a stored one",
    v(T1),
    v(T2, { content: "y" }),
    vps(null),
    { winner: "incoming", conflict: true },
  ],
  [
    "vps: newer, concurrent, both tombstones",
    tomb(T1),
    tomb(T2),
    vps(null),
    { winner: "incoming", conflict: false },
  ],
  ["vps: newer, concurrent, same content", v(T1), v(T2), vps(null), { winner: "incoming", conflict: true }],
  [
    "vps: newer tombstone over a concurrent write",
    v(T1),
    tomb(T2),
    vps(null),
    { winner: "incoming", conflict: true },
  ],
  [
    "edge: newer over a local write it saw",
    v(T1),
    v(T2, { content: "y" }),
    edge(T1, true),
    { winner: "incoming", conflict: false },
  ],
  [
    "edge: newer over a local write it did not see",
    v(T1),
    v(T2, { content: "y" }),
    edge(h(0, "a"), true),
    { winner: "incoming", conflict: true },
  ],
  [
    "edge: newer with a null base over a local write",
    v(T1),
    v(T2, { content: "y" }),
    edge(null, true),
    { winner: "incoming", conflict: true },
  ],
  [
    "edge: newer over a cached VPS version",
    v(T1),
    v(T2, { content: "y" }),
    edge(h(0, "a"), false),
    { winner: "incoming", conflict: false },
  ],
  [
    "edge: newer, concurrent, same content",
    v(T1),
    v(T2),
    edge(null, true),
    { winner: "incoming", conflict: false },
  ],
  [
    "edge: newer, concurrent, both tombstones",
    tomb(T1),
    tomb(T2),
    edge(null, true),
    { winner: "incoming", conflict: false },
  ],
  // newer incoming, without a base (older peers)
  [
    "vps: newer without base, other device",
    v(T1),
    v(T2, { content: "y" }),
    vps(undefined),
    { winner: "incoming", conflict: true },
  ],
  [
    "vps: newer without base, same device",
    v(T1),
    v(T3, { content: "y" }),
    vps(undefined),
    { winner: "incoming", conflict: false },
  ],
  [
    "vps: newer without base, tombstones",
    tomb(T1),
    tomb(T2),
    vps(undefined),
    { winner: "incoming", conflict: false },
  ],
  [
    "edge: newer without base over a local write",
    v(T1),
    v(T2, { content: "y" }),
    edge(undefined, true),
    { winner: "incoming", conflict: true },
  ],
  [
    "edge: newer without base over a local write of the same device",
    v(T1),
    v(T3, { content: "y" }),
    edge(undefined, true),
    { winner: "incoming", conflict: true },
  ],
  [
    "edge: newer without base over a cached version",
    v(T1),
    v(T2, { content: "y" }),
    edge(undefined, false),
    { winner: "incoming", conflict: false },
  ],
  // older incoming
  [
    "vps: older incoming is always logged",
    v(T2),
    v(T1, { content: "y" }),
    vps(null),
    { winner: "current", conflict: true },
  ],
  ["vps: older incoming, same content, logged", v(T2), v(T1), vps(T2), { winner: "current", conflict: true }],
  [
    "vps: older incoming tombstone over a tombstone, logged",
    tomb(T2),
    tomb(T1),
    vps(undefined),
    { winner: "current", conflict: true },
  ],
  [
    "edge: older remote vs a local write",
    v(T2),
    v(T1, { content: "y" }),
    edge(null, true),
    { winner: "current", conflict: true },
  ],
  [
    "edge: older remote that the local write replaced",
    v(T2),
    v(T1, { content: "y" }),
    edge(null, true, T1),
    { winner: "current", conflict: false },
  ],
  [
    "edge: older remote vs a cached version",
    v(T2),
    v(T1, { content: "y" }),
    edge(null, false),
    { winner: "current", conflict: false },
  ],
  [
    "edge: an older version of our own node",
    v(h(5, "x")),
    v(h(4, "me"), { content: "y" }),
    edge(null, true),
    { winner: "current", conflict: false },
  ],
  [
    "edge: older remote with the same state",
    v(T2),
    v(T1),
    edge(null, true),
    { winner: "current", conflict: false },
  ],
  [
    "edge: older tombstone vs local tombstone",
    tomb(T2),
    tomb(T1),
    edge(null, true),
    { winner: "current", conflict: false },
  ],
  [
    "edge: older tombstone vs a local write",
    v(T2),
    tomb(T1),
    edge(null, true),
    { winner: "current", conflict: true },
  ],
];

describe("resolve", () => {
  for (const [name, current, incoming, opts, want] of rows)
    test(name, () => {
      expect(resolve(current, incoming, opts)).toEqual(want);
    });
});

// The decisions as both stores wrote them before they shared this rule, kept as oracles.
function oldEdge(
  row: (V & { base_hlc: string | null; local: boolean }) | undefined,
  remote: V,
  base_hlc: string | null | undefined,
  own: string,
) {
  if (!row) return { winner: "incoming", conflict: false };
  const order = remote.hlc < row.hlc ? -1 : remote.hlc > row.hlc ? 1 : 0;
  if (order === 0) return { winner: "same", conflict: false };
  if (order < 0)
    return {
      winner: "current",
      conflict:
        row.local &&
        row.base_hlc !== remote.hlc &&
        parseHlc(remote.hlc)?.node !== own &&
        !sameContent(row, remote),
    };
  const base = base_hlc ?? null;
  const concurrent = base_hlc === undefined ? row.local : row.local && base !== row.hlc;
  return { winner: "incoming", conflict: concurrent && !sameContent(row, remote) };
}
function oldVps(cur: V | undefined, incoming: V, base_hlc: string | null | undefined, device: string) {
  if (cur && !(incoming.hlc > cur.hlc))
    return { winner: incoming.hlc === cur.hlc ? "same" : "current", conflict: incoming.hlc !== cur.hlc };
  const concurrent = base_hlc === undefined ? cur?.origin_device !== device : base_hlc !== cur?.hlc;
  return { winner: "incoming", conflict: !!cur && concurrent && !(cur.deleted && incoming.deleted) };
}

describe("resolve keeps both stores' former decisions", () => {
  const stamps = [h(1, "a"), h(1, "me"), h(2, "b"), h(2, "me"), h(3, "a")];
  const bases = [undefined, null, ...stamps];
  const states = [
    { deleted: false, content: "x" },
    { deleted: false, content: "y" },
    { deleted: true, content: "" },
  ];

  test("the edge, over every combination of stamps, bases, states and sources", () => {
    let checked = 0;
    for (const cs of stamps)
      for (const is of stamps)
        for (const cst of states)
          for (const ist of states)
            for (const ib of bases)
              for (const cb of [null, ...stamps])
                for (const local of [true, false]) {
                  const row = { ...v(cs, cst), base_hlc: cb, local };
                  const remote = v(is, ist);
                  const got = resolve(v(cs, cst), remote, edge(ib, local, cb));
                  expect(got).toEqual(oldEdge(row, remote, ib, "me") as Resolution);
                  checked++;
                }
    expect(checked).toBe(5 * 5 * 3 * 3 * 7 * 6 * 2);
  });

  test("the VPS, over every combination of stamps, bases, states and devices", () => {
    let checked = 0;
    for (const cs of [undefined, ...stamps])
      for (const is of stamps)
        for (const cst of states)
          for (const ist of states)
            for (const ib of bases) {
              const cur = cs === undefined ? undefined : v(cs, cst);
              const incoming = v(is, ist);
              const got = resolve(cur, incoming, vps(ib));
              expect(got).toEqual(oldVps(cur, incoming, ib, incoming.origin_device) as Resolution);
              checked++;
            }
    expect(checked).toBe(6 * 5 * 3 * 3 * 7);
  });
});
