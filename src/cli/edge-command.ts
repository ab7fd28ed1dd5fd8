/** Shared plumbing of the edge commands: config from flags, the daemon-or-direct client, limits. */
import type { Command } from "commander";
import type { EdgeConfig } from "../core/config.ts";
import { DionysusError, describeIssues } from "../core/errors.ts";
import { Limit } from "../core/protocol/edge-api.ts";
import { connectEdge, type EdgeClient } from "../edge/client.ts";
import { dbPath } from "../edge/daemon-file.ts";
import { createSqliteStore } from "../edge/store/sqlite/index.ts";
import type { EdgeStore } from "../edge/store/types.ts";
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

/** Opens the edge database directly (beside a running daemon too: SQLite WAL), for the commands
 * that read or write in bulk (export, import, backup) and would only be slowed by the HTTP API. */
export function openEdgeStore(cmd: Command): EdgeStore {
  const config = edgeConfig(cmd);
  return createSqliteStore({
    path: dbPath(config.data_dir),
    maxContentBytes: config.max_content_bytes,
    integrityCheck: false,
    // Never the full-disk fallback: its exclusive lock would get in a daemon's way.
    fullDiskFallback: false,
  });
}

/** Parses a `--limit`-style flag: an integer 1..100. */
export function parseLimit(value: string, flag: string): number {
  const r = Limit.safeParse(value);
  if (!r.success) throw new DionysusError("invalid_input", `--${flag}: ${describeIssues(r.error.issues)}`);
  return r.data;
}
