/**
 * The one place that reads the environment: nothing in src/core, src/edge or src/vps does.
 * Resolution: flags > DIONYSUS_* env > config file (`<data dir>/config.json`) > schema defaults.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { EdgeConfig, VpsConfig } from "../core/config.ts";
import { DionysusError, describeIssues } from "../core/errors.ts";

/** The platform's per-user data directory for Dionysus. */
export function platformDataDir(role: "edge" | "vps" = "edge"): string {
  const name = role === "edge" ? "dionysus" : "dionysus-vps";
  const env = process.env;
  if (process.platform === "darwin") return join(homedir(), "Library", "Application Support", name);
  if (process.platform === "win32")
    return join(env.LOCALAPPDATA ?? join(homedir(), "AppData", "Local"), name);
  return join(env.XDG_DATA_HOME || join(homedir(), ".local", "share"), name);
}

/** `--data-dir`, else `DIONYSUS_HOME`, else the platform's data dir. */
export function resolveDataDir(flag: string | undefined, role: "edge" | "vps" = "edge"): string {
  if (flag) return flag;
  const fromEnv = role === "edge" ? process.env.DIONYSUS_HOME : process.env.DIONYSUS_VPS_HOME;
  return fromEnv || platformDataDir(role);
}

function readConfigFile(dataDir: string): Record<string, unknown> {
  const path = join(dataDir, "config.json");
  if (!existsSync(path)) return {};
  try {
    const parsed: unknown = JSON.parse(readFileSync(path, "utf8"));
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch (cause) {
    throw new DionysusError("config_invalid", `${path} is not valid JSON`, { cause });
  }
  throw new DionysusError("config_invalid", `${path} must hold a JSON object`);
}

/** `DIONYSUS_FOO_BAR` → `foo_bar`, for the keys a schema knows. */
function readEnv(keys: readonly string[], prefix: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const v = process.env[`${prefix}${key.toUpperCase()}`];
    if (v !== undefined && v !== "")
      out[key] = key === "allowed_origins" ? v.split(",").map((s) => s.trim()) : v;
  }
  return out;
}

function dropUndefined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

export function loadEdgeConfig(flags: { dataDir?: string; [k: string]: unknown }): EdgeConfig {
  const data_dir = resolveDataDir(flags.dataDir, "edge");
  const { dataDir: _ignored, ...rest } = flags;
  const merged = {
    ...readConfigFile(data_dir),
    ...readEnv(Object.keys(EdgeConfig.shape), "DIONYSUS_"),
    ...dropUndefined(rest),
    data_dir,
  };
  const r = EdgeConfig.safeParse(merged);
  if (!r.success)
    throw new DionysusError("config_invalid", `invalid configuration: ${describeIssues(r.error.issues)}`);
  return r.data;
}

export function loadVpsConfig(flags: { dataDir?: string; [k: string]: unknown }): VpsConfig {
  const data_dir = resolveDataDir(flags.dataDir, "vps");
  const { dataDir: _ignored, ...rest } = flags;
  const env = readEnv(Object.keys(VpsConfig.shape), "DIONYSUS_VPS_");
  if (process.env.DATABASE_URL && env.database_url === undefined) env.database_url = process.env.DATABASE_URL;
  if (process.env.NEO4J_URL && env.neo4j_url === undefined) env.neo4j_url = process.env.NEO4J_URL;
  if (process.env.OLLAMA_URL && env.ollama_url === undefined) env.ollama_url = process.env.OLLAMA_URL;
  const merged = { ...readConfigFile(data_dir), ...env, ...dropUndefined(rest), data_dir };
  const r = VpsConfig.safeParse(merged);
  if (!r.success)
    throw new DionysusError("config_invalid", `invalid configuration: ${describeIssues(r.error.issues)}`);
  return r.data;
}
