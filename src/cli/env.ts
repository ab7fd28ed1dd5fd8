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

export const configFilePath = (dataDir: string) => join(dataDir, "config.json");

/** The config file's settings; a key the schema does not know stops start-up, named. */
export function readConfigFile(dataDir: string, known: readonly string[]): Record<string, unknown> {
  const path = configFilePath(dataDir);
  if (!existsSync(path)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new DionysusError("config_invalid", `${path} is not valid JSON`, { cause });
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
    throw new DionysusError("config_invalid", `${path} must hold a JSON object`);
  for (const key of Object.keys(parsed))
    if (!known.includes(key))
      throw new DionysusError("config_invalid", `unknown config key "${key}" in ${path}`, {
        details: { key },
      });
  return parsed as Record<string, unknown>;
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

/** Where each setting comes from, lowest first: the file, the environment, the flags. */
export interface ConfigLayers {
  data_dir: string;
  file: Record<string, unknown>;
  env: Record<string, unknown>;
  flags: Record<string, unknown>;
}

export function edgeLayers(flags: { dataDir?: string; [k: string]: unknown }): ConfigLayers {
  const data_dir = resolveDataDir(flags.dataDir, "edge");
  const { dataDir: _ignored, ...rest } = flags;
  const keys = Object.keys(EdgeConfig.shape);
  return {
    data_dir,
    file: readConfigFile(data_dir, keys),
    env: readEnv(keys, "DIONYSUS_"),
    flags: dropUndefined(rest),
  };
}

export function vpsLayers(flags: { dataDir?: string; [k: string]: unknown }): ConfigLayers {
  const data_dir = resolveDataDir(flags.dataDir, "vps");
  const { dataDir: _ignored, ...rest } = flags;
  const keys = Object.keys(VpsConfig.shape);
  const env = readEnv(keys, "DIONYSUS_VPS_");
  if (process.env.DATABASE_URL && env.database_url === undefined) env.database_url = process.env.DATABASE_URL;
  if (process.env.NEO4J_URL && env.neo4j_url === undefined) env.neo4j_url = process.env.NEO4J_URL;
  if (process.env.OLLAMA_URL && env.ollama_url === undefined) env.ollama_url = process.env.OLLAMA_URL;
  if (process.env.DIONYSUS_LOG_LEVEL && env.log_level === undefined)
    env.log_level = process.env.DIONYSUS_LOG_LEVEL;
  return { data_dir, file: readConfigFile(data_dir, keys), env, flags: dropUndefined(rest) };
}

const merge = (l: ConfigLayers) => ({ ...l.file, ...l.env, ...l.flags, data_dir: l.data_dir });

export function loadEdgeConfig(flags: { dataDir?: string; [k: string]: unknown }): EdgeConfig {
  const r = EdgeConfig.safeParse(merge(edgeLayers(flags)));
  if (!r.success)
    throw new DionysusError("config_invalid", `invalid configuration: ${describeIssues(r.error.issues)}`);
  return r.data;
}

export function loadVpsConfig(flags: { dataDir?: string; [k: string]: unknown }): VpsConfig {
  const r = VpsConfig.safeParse(merge(vpsLayers(flags)));
  if (!r.success)
    throw new DionysusError("config_invalid", `invalid configuration: ${describeIssues(r.error.issues)}`);
  return r.data;
}
