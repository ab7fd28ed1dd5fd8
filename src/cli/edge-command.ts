/** Shared plumbing of the edge commands: config from flags, the daemon-or-direct client, limits. */
import type { Command } from "commander";
import type { EdgeConfig } from "../core/config.ts";
import { DionysusError, describeIssues } from "../core/errors.ts";
import { Limit } from "../core/protocol/edge-api.ts";
import { connectEdge, type EdgeClient } from "../edge/client.ts";
import { loadEdgeConfig } from "./env.ts";

/** The edge config for a command: its flags and the global `--data-dir`. */
export function edgeConfig(cmd: Command, flags: Record<string, unknown> = {}): EdgeConfig {
  const { dataDir } = cmd.optsWithGlobals<{ dataDir?: string }>();
  return loadEdgeConfig({ dataDir, ...flags });
}

/** Runs `fn` with a client on the running daemon, or on the database directly. */
export async function withEdge<T>(cmd: Command, fn: (client: EdgeClient) => Promise<T>): Promise<T> {
  const client = await connectEdge(edgeConfig(cmd));
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** Parses a `--limit`-style flag: an integer 1..100. */
export function parseLimit(value: string, flag: string): number {
  const r = Limit.safeParse(value);
  if (!r.success) throw new DionysusError("invalid_input", `--${flag}: ${describeIssues(r.error.issues)}`);
  return r.data;
}
