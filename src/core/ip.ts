/**
 * IP address parsing and classification, pure (no runtime): trusted-proxy lists (`a.b.c.d/nn`
 * CIDRs) and the webhook target filter, which refuses non-public addresses.
 */

export interface IpAddress {
  version: 4 | 6;
  /** The address as a 32-bit (IPv4) or 128-bit (IPv6) integer. */
  value: bigint;
}

/**
 * One IPv4 part as `inet_aton` reads it: decimal, `0x` hex or leading-zero octal. Browsers and
 * URL parsers accept these forms (`http://0x7f.1/`), so a filter must read them the same way.
 */
function ipv4Part(s: string): bigint | undefined {
  if (/^0[xX][0-9a-fA-F]*$/.test(s)) return s.length === 2 ? 0n : BigInt(s);
  if (/^0[0-7]+$/.test(s)) return BigInt(`0o${s.slice(1)}`);
  if (/^(0|[1-9][0-9]*)$/.test(s)) return BigInt(s);
  return undefined;
}

/** IPv4 in any of the forms `inet_aton` takes: `a.b.c.d`, `a.b.c`, `a.b`, `a` (e.g. `2130706433`). */
export function parseIpv4(s: string): bigint | undefined {
  const parts = s.endsWith(".") ? s.slice(0, -1).split(".") : s.split(".");
  if (parts.length < 1 || parts.length > 4) return undefined;
  const nums: bigint[] = [];
  for (const p of parts) {
    const n = ipv4Part(p);
    if (n === undefined) return undefined;
    nums.push(n);
  }
  const last = nums.pop()!;
  let value = 0n;
  for (const [i, n] of nums.entries()) {
    if (n > 255n) return undefined;
    value |= n << BigInt(8 * (3 - i));
  }
  const room = 8 * (4 - nums.length);
  if (last >= 1n << BigInt(room)) return undefined;
  return value | last;
}

function parseIpv6(input: string): bigint | undefined {
  let s = input;
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  // A trailing dotted IPv4 (`::ffff:1.2.3.4`) stands for the last two groups.
  const lastColon = s.lastIndexOf(":");
  const dotted = s.slice(lastColon + 1);
  if (dotted.includes(".")) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(dotted)) return undefined;
    const v4 = dotted.split(".").map(Number);
    if (v4.some((n) => n > 255)) return undefined;
    const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
    s = `${s.slice(0, lastColon + 1)}${hex(v4[0]!, v4[1]!)}:${hex(v4[2]!, v4[3]!)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string) => (h === "" ? [] : h.split(":"));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...rest];
  if (all.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  if (halves.length === 1 ? all.length !== 8 : all.length > 7) return undefined;
  const nums = [
    ...head.map((g) => BigInt(`0x${g}`)),
    ...Array<bigint>(8 - all.length).fill(0n),
    ...rest.map((g) => BigInt(`0x${g}`)),
  ];
  return nums.reduce((acc, g) => (acc << 16n) | g, 0n);
}

/** Parses an IP address (IPv6 may be bracketed); IPv4 in the `inet_aton` forms too. */
export function parseIp(input: string): IpAddress | undefined {
  const s = input.trim().replace(/^\[(.*)\]$/, "$1");
  if (s === "") return undefined;
  if (s.includes(":")) {
    const v = parseIpv6(s);
    return v === undefined ? undefined : { version: 6, value: v };
  }
  const v = parseIpv4(s);
  return v === undefined ? undefined : { version: 4, value: v };
}

/** An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it is. */
export function unmapIp(ip: IpAddress): IpAddress {
  if (ip.version === 6 && ip.value >> 32n === 0xffffn) return { version: 4, value: ip.value & 0xffffffffn };
  return ip;
}

/** The canonical text of an address (IPv4-mapped IPv6 as plain IPv4). */
export function formatIp(input: IpAddress): string {
  const ip = unmapIp(input);
  if (ip.version === 4) return [24n, 16n, 8n, 0n].map((sh) => String((ip.value >> sh) & 0xffn)).join(".");
  const groups = [...Array(8).keys()].map((i) => ((ip.value >> BigInt(16 * (7 - i))) & 0xffffn).toString(16));
  // The longest run of zero groups (2 or more) becomes `::`.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** Canonical text of an address given as text, or undefined when it is not one. */
export function normaliseIp(input: string): string | undefined {
  const ip = parseIp(input);
  return ip ? formatIp(ip) : undefined;
}

export interface Cidr {
  version: 4 | 6;
  base: bigint;
  bits: number;
}

/**
 * `a.b.c.d/nn`, `x::y/nn` or a single address (a /32 or /128). An IPv4-mapped prefix of /96 or
 * longer (`::ffff:10.0.0.0/104`) is the IPv4 range it maps.
 */
export function parseCidr(input: string, unmap = true): Cidr | undefined {
  const [addr, len, extra] = input.trim().split("/");
  if (extra !== undefined || addr === undefined) return undefined;
  const raw = parseIp(addr);
  if (!raw) return undefined;
  const rawMax = raw.version === 4 ? 32 : 128;
  let bits = len === undefined ? rawMax : /^\d{1,3}$/.test(len) ? Number(len) : Number.NaN;
  if (!Number.isInteger(bits) || bits < 0 || bits > rawMax) return undefined;
  let ip = raw;
  if (unmap && raw.version === 6 && bits >= 96 && unmapIp(raw).version === 4) {
    ip = unmapIp(raw);
    bits -= 96;
  }
  const shift = BigInt((ip.version === 4 ? 32 : 128) - bits);
  return { version: ip.version, base: (ip.value >> shift) << shift, bits };
}

/** Whether `cidr` holds the address (an IPv4-mapped IPv6 address counts as its IPv4 address). */
export function cidrContains(cidr: Cidr, input: IpAddress, unmap = true): boolean {
  const ip = unmap ? unmapIp(input) : input;
  if (ip.version !== cidr.version) return false;
  const shift = BigInt((ip.version === 4 ? 32 : 128) - cidr.bits);
  return ip.value >> shift === cidr.base >> shift;
}

const cidrs = (list: string[]) => list.map((s) => parseCidr(s, false)!);

/** IPv4 ranges no webhook may reach: not the public internet. */
const NON_PUBLIC_V4 = cidrs([
  "0.0.0.0/8", // "this network", unspecified
  "10.0.0.0/8", // private
  "100.64.0.0/10", // carrier-grade NAT
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local, cloud metadata (169.254.169.254)
  "172.16.0.0/12", // private
  "192.0.0.0/24", // IETF protocol assignments
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, broadcast
]);

/** IPv6 ranges no webhook may reach. */
const NON_PUBLIC_V6 = cidrs([
  "::/128", // unspecified
  "::1/128", // loopback
  "100::/64", // discard
  "fc00::/7", // unique local, cloud metadata (fd00:ec2::254)
  "fe80::/10", // link-local
  "fec0::/10", // site-local (deprecated)
  "ff00::/8", // multicast
]);

/** IPv6 prefixes that embed an IPv4 address in their low 32 bits: judged by that address. */
const EMBEDS_V4 = cidrs([
  "::ffff:0:0/96", // IPv4-mapped
  "::/96", // IPv4-compatible (deprecated)
  "64:ff9b::/96", // NAT64
]);

/**
 * Whether an address is on the public internet: not loopback, private, link-local, CGNAT,
 * multicast, unspecified, reserved or a cloud metadata address, also when written as an
 * IPv4-mapped, IPv4-compatible or NAT64 IPv6 address.
 */
export function isPublicIp(input: IpAddress): boolean {
  let ip = input;
  if (ip.version === 6 && ip.value > 1n && EMBEDS_V4.some((c) => cidrContains(c, ip, false)))
    ip = { version: 4, value: ip.value & 0xffffffffn };
  const list = ip.version === 4 ? NON_PUBLIC_V4 : NON_PUBLIC_V6;
  return !list.some((c) => cidrContains(c, ip, false));
}
