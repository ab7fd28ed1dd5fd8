/**
 * `dionysus config show` (the effective settings, where each comes from, secrets masked) and
 * `dionysus config set KEY VALUE` (writes `<data dir>/config.json` after checking the value), for
 * the edge, or with `--vps` for the VPS. Resolution is the one env.ts applies at start-up:
 * flags > environment > config file > defaults.
 */
import { chmodSync, renameSync, writeFileSync } from "node:fs";
import type { Command } from "commander";
import type { z } from "zod";
import { EdgeConfig, VpsConfig } from "../../core/config.ts";
import { DionysusError, describeIssues } from "../../core/errors.ts";
import { type ConfigLayers, configFilePath, edgeLayers, vpsLayers } from "../env.ts";
import { action, printJson } from "../output.ts";

type Source = "flag" | "env" | "file" | "default" | "data dir";

interface Setting {
  key: string;
  value: unknown;
  source: Source;
}

const SECRET_KEY = /password|secret|token/i;

/** A secret shown as `****`; a URL with its password (in its user part or a query parameter such
 * as `?password=`) masked, and one that does not parse as a URL masked whole (where its secret
 * sits cannot be told). */
export function mask(key: string, value: unknown): unknown {
  if (value === undefined || value === null) return value;
  if (SECRET_KEY.test(key)) return "****";
  if (typeof value === "string" && /_url$/.test(key)) {
    try {
      const u = new URL(value);
      if (u.password) u.password = "****";
      for (const name of [...u.searchParams.keys()])
        if (SECRET_KEY.test(name)) u.searchParams.set(name, "****");
      return u.toString();
    } catch {
      return "****";
    }
  }
  return value;
}

function layersFor(vps: boolean | undefined, cmd: Command): { layers: ConfigLayers; schema: z.ZodObject } {
  const { dataDir } = cmd.optsWithGlobals<{ dataDir?: string }>();
  return vps
    ? { layers: vpsLayers({ dataDir }), schema: VpsConfig }
    : { layers: edgeLayers({ dataDir }), schema: EdgeConfig };
}

function effective(layers: ConfigLayers, schema: z.ZodObject): Setting[] {
  const merged = { ...layers.file, ...layers.env, ...layers.flags, data_dir: layers.data_dir };
  const r = schema.safeParse(merged);
  if (!r.success)
    throw new DionysusError("config_invalid", `invalid configuration: ${describeIssues(r.error.issues)}`);
  const parsed = r.data as Record<string, unknown>;
  return Object.keys(schema.shape).map((key) => ({
    key,
    value: mask(key, parsed[key]),
    source:
      key === "data_dir"
        ? "data dir"
        : key in layers.flags
          ? "flag"
          : key in layers.env
            ? "env"
            : key in layers.file
              ? "file"
              : "default",
  }));
}

/** A value typed on the command line, as the config file would hold it. */
function fileValue(schema: z.ZodObject, key: string, raw: string): unknown {
  const probe = (schema.shape as Record<string, z.ZodType>)[key]!;
  if (probe.safeParse([]).success && !probe.safeParse(raw).success)
    return raw
      .split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "");
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  if (raw === "true" || raw === "false") return raw === "true";
  return raw;
}

export function registerConfig(program: Command): void {
  const config = program
    .command("config")
    .description("show or change the settings (edge, or the VPS with --vps)");
  config
    .command("show")
    .description(
      "the effective settings and where each comes from (flag, env, file, default); secrets masked",
    )
    .option("--vps", "the VPS's settings (its data dir)")
    .option("--json", "print {file, settings: [{key, value, source}]} as JSON")
    .action(
      action(async (opts: { vps?: boolean; json?: boolean }, cmd: Command) => {
        const { layers, schema } = layersFor(opts.vps, cmd);
        const settings = effective(layers, schema);
        const file = configFilePath(layers.data_dir);
        if (opts.json) return printJson({ file, settings });
        const width = Math.max(...settings.map((s) => s.key.length));
        const lines = settings.map(
          (s) =>
            `${s.key.padEnd(width)}  ${s.value === undefined ? "-" : JSON.stringify(s.value)}  (${s.source})`,
        );
        process.stdout.write(`# ${file}\n${lines.join("\n")}\n`);
      }),
    );
  config
    .command("set <key> <value>")
    .description("write KEY = VALUE into the config file (checked first; lists comma-separated)")
    .option("--vps", "the VPS's config file (its data dir)")
    .action(
      action(async (key: string, raw: string, opts: { vps?: boolean }, cmd: Command) => {
        const { layers, schema } = layersFor(opts.vps, cmd);
        if (!(key in schema.shape) || key === "data_dir")
          throw new DionysusError(
            "invalid_input",
            `unknown config key "${key}" (see dionysus config show${opts.vps ? " --vps" : ""})`,
          );
        const file = { ...layers.file, [key]: fileValue(schema, key, raw) };
        const r = schema.safeParse({ ...file, data_dir: layers.data_dir });
        if (!r.success)
          throw new DionysusError(
            "invalid_input",
            `${key}: ${describeIssues(r.error.issues.map((i) => ({ ...i, path: i.path.slice(1) })))}`,
          );
        const path = configFilePath(layers.data_dir);
        const tmp = `${path}.tmp-${process.pid}`;
        writeFileSync(tmp, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
        chmodSync(tmp, 0o600);
        renameSync(tmp, path);
        const overridden = key in layers.env ? " (the environment overrides it)" : "";
        process.stdout.write(
          `set ${key} = ${JSON.stringify(mask(key, file[key]))} in ${path}${overridden}\n`,
        );
      }),
    );
}
