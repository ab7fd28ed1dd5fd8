/** The URL a server is reached at when no `public_url` says otherwise. */
import { networkInterfaces } from "node:os";

/**
 * The URL of the listening address, for links when `public_url` is not set: the bound address,
 * or for a wildcard bind the first non-internal IPv4 address of the machine (else loopback).
 */
export function listeningUrl(host: string, port: number): string {
  let h = host;
  if (host === "0.0.0.0" || host === "::" || host === "") {
    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal);
    h = external?.address ?? "127.0.0.1";
  }
  return `http://${h.includes(":") ? `[${h}]` : h}:${port}`;
}
