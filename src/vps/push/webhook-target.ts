/**
 * Where a webhook may point. A user's webhook makes the server send requests, so a URL must not
 * reach the server's own network: loopback, private, link-local, CGNAT, multicast, unspecified,
 * reserved and cloud metadata addresses are refused (also IPv4-mapped IPv6 and the numeric IPv4
 * forms such as `http://2130706433/`) unless `webhook_allow_private` is set. A host name is
 * resolved and every address it has is checked; the delivery then connects to the checked address
 * (sending the name as Host and TLS server name), so the name cannot resolve elsewhere in between.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { DionysusError } from "../../core/errors.ts";
import { formatIp, isPublicIp, parseIp } from "../../core/ip.ts";

/** Resolves a host name to all of its addresses (node:dns `lookup` with `all: true`). */
export type HostLookup = (host: string) => Promise<Array<{ address: string; family: number }>>;

export const systemLookup: HostLookup = (host) => dnsLookup(host, { all: true, verbatim: true });

export interface WebhookTarget {
  url: URL;
  /** The checked address to connect to. */
  address: string;
  /** The URL with the address in place of the host name (bracketed for IPv6). */
  pinnedUrl: string;
  /** The Host header to send (`name[:port]`). */
  host: string;
  /** The name to verify the TLS certificate against (https with a host name only). */
  serverName: string | undefined;
}

/**
 * Checks a webhook URL and picks the address to connect to. Throws `invalid_input` for a URL
 * whose host is, or resolves to, a non-public address (unless `allowPrivate`), or does not
 * resolve at all.
 */
export async function resolveWebhookTarget(
  raw: string,
  allowPrivate: boolean,
  lookup: HostLookup = systemLookup,
): Promise<WebhookTarget> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new DionysusError("invalid_input", "the webhook URL is not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    throw new DionysusError("invalid_input", "the webhook URL must be http or https");
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const literal = parseIp(hostname);
  let addresses: string[];
  if (literal) addresses = [formatIp(literal)];
  else {
    try {
      addresses = (await lookup(hostname)).map((a) => a.address);
    } catch {
      throw new DionysusError("invalid_input", `the webhook host ${hostname} does not resolve`);
    }
    if (addresses.length === 0)
      throw new DionysusError("invalid_input", `the webhook host ${hostname} does not resolve`);
  }
  const ips = addresses.map((a) => {
    const ip = parseIp(a);
    if (!ip) throw new DionysusError("invalid_input", `the webhook host ${hostname} resolves to ${a}`);
    return ip;
  });
  if (!allowPrivate) {
    const bad = ips.find((ip) => !isPublicIp(ip));
    if (bad)
      throw new DionysusError(
        "invalid_input",
        `the webhook URL points to ${formatIp(bad)}, which is not a public address (set webhook_allow_private to allow it)`,
      );
  }
  const address = formatIp(ips[0]!);
  const pinned = new URL(url.href);
  pinned.hostname = address.includes(":") ? `[${address}]` : address;
  return {
    url,
    address,
    pinnedUrl: pinned.href,
    host: url.host,
    serverName: url.protocol === "https:" && !literal ? hostname : undefined,
  };
}
