/**
 * The service files `dionysus service install` writes: the systemd units pass
 * `systemd-analyze verify` (when it exists; it runs here without a running systemd), and the
 * launchd property list parses as a plist with the keys launchd needs (no plutil on Linux).
 */
import { describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  launchdPlist,
  type ServiceRole,
  type ServiceScope,
  type ServiceSpec,
  systemdUnit,
  systemdWord,
} from "../../../src/platform/service/units.ts";

const analyze = Bun.which("systemd-analyze");

/** A data dir and binary path with the characters that need quoting in each format. */
function spec(role: ServiceRole, scope: ServiceScope, binary: string, dataDir: string): ServiceSpec {
  return { role, scope, command: [binary], dataDir, home: "/home/ana" };
}

function verify(unit: string, name: string): { code: number; output: string } {
  const dir = mkdtempSync(join(tmpdir(), "dionysus-unit-"));
  try {
    const file = join(dir, name);
    writeFileSync(file, unit);
    const r = Bun.spawnSync([analyze!, "verify", file], { stdout: "pipe", stderr: "pipe" });
    return { code: r.exitCode, output: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("systemd units", () => {
  test("ExecStart words are quoted and escaped as systemd reads them", () => {
    expect(systemdWord("/usr/local/bin/dionysus")).toBe("/usr/local/bin/dionysus");
    expect(systemdWord("/home/ana/My Data")).toBe('"/home/ana/My Data"');
    expect(systemdWord("/data/100%")).toBe("/data/100%%");
    expect(systemdWord("/data/$HOME")).toBe("/data/$$HOME");
    // A line break would start a directive of its own (ExecStartPre=…): refused, not written.
    expect(() => systemdWord("/tmp/x\nExecStartPre=/bin/sh -c evil")).toThrow("control character");
    expect(() => systemdWord("/tmp/x\ry")).toThrow("control character");
    expect(systemdWord('/a "b"\\c')).toBe('"/a \\"b\\"\\\\c"');
  });

  test("user and system units, edge and VPS: the right command, target and sandbox", () => {
    const edge = systemdUnit(spec("edge", "user", "/opt/dionysus", "/home/ana/.local/share/dionysus"));
    expect(edge).toContain("ExecStart=/opt/dionysus serve --data-dir /home/ana/.local/share/dionysus\n");
    expect(edge).toContain("WantedBy=default.target");
    expect(edge).not.toContain("DynamicUser");
    const vps = systemdUnit(spec("vps", "system", "/usr/local/bin/dionysus", "/ignored"));
    expect(vps).toContain("ExecStart=/usr/local/bin/dionysus vps serve --data-dir /var/lib/dionysus-vps\n");
    expect(vps).toContain("StateDirectory=dionysus-vps");
    expect(vps).toContain("DynamicUser=yes");
    expect(vps).toContain("EnvironmentFile=-/etc/dionysus/dionysus-vps.env");
    expect(vps).toContain("WantedBy=multi-user.target");
  });

  test.skipIf(!analyze)("every unit passes systemd-analyze verify, quoting included", () => {
    // verify checks that ExecStart's program exists and is executable: a real file with a space.
    const dir = mkdtempSync(join(tmpdir(), "dionysus unit bin-"));
    try {
      const bin = join(dir, "dionysus");
      writeFileSync(bin, "#!/bin/sh\nexit 0\n");
      chmodSync(bin, 0o755);
      const data = join(dir, "data 100% $HOME");
      mkdirSync(data);
      for (const role of ["edge", "vps"] as const)
        for (const scope of ["user", "system"] as const) {
          const r = verify(systemdUnit(spec(role, scope, bin, data)), `dionysus-${role}-${scope}.service`);
          expect({ role, scope, ...r }).toEqual({ role, scope, code: 0, output: "" });
        }
      // The check can fail: a unit whose program is missing, with a key systemd does not know.
      const broken = `${systemdUnit(spec("edge", "user", join(dir, "missing"), data))}\n[Service]\nBogus=1\n`;
      const bad = verify(broken, "broken.service");
      expect(bad.output).toContain("Bogus");
      expect(bad.code).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** A plist value: what this test's small parser reads (dict, array, string, true, false). */
type PlistValue = string | boolean | PlistValue[] | { [key: string]: PlistValue };

/** Parses the subset of Apple's XML plist format that launchd agents use; throws on anything else. */
function parsePlist(text: string): PlistValue {
  const decode = (s: string) =>
    s.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"').replaceAll("&amp;", "&");
  expect(text).toStartWith(
    '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN"',
  );
  const body = /<plist version="1.0">([\s\S]*)<\/plist>\s*$/.exec(text)?.[1];
  if (body === undefined) throw new Error("no <plist> element");
  type Token = { text: string } | { text?: undefined; close: boolean; name: string; empty: boolean };
  const tokens: Token[] = [...body.matchAll(/<(\/?)(\w+)(\/?)>|([^<]+)/g)]
    .map(
      (m): Token =>
        m[4] !== undefined ? { text: m[4] } : { close: m[1] === "/", name: m[2]!, empty: m[3] === "/" },
    )
    .filter((t) => t.text === undefined || t.text.trim() !== "");
  let i = 0;
  const next = (): Token =>
    tokens[i++] ??
    (() => {
      throw new Error("unexpected end");
    })();
  const value = (): PlistValue => {
    const t = next();
    if (t.text !== undefined || t.close) throw new Error(`unexpected ${JSON.stringify(t)}`);
    if (t.empty && (t.name === "true" || t.name === "false")) return t.name === "true";
    if (t.name === "string") {
      const inner = next();
      if (inner.text !== undefined) {
        const end = next();
        if (end.text !== undefined || !end.close || end.name !== "string")
          throw new Error("unclosed <string>");
        if (/[<>]|&(?!(lt|gt|quot|amp);)/.test(inner.text)) throw new Error(`unescaped text: ${inner.text}`);
        return decode(inner.text);
      }
      if (!inner.close || inner.name !== "string") throw new Error("bad <string>");
      return "";
    }
    if (t.name === "array") {
      const out: PlistValue[] = [];
      for (;;) {
        const peek = tokens[i];
        if (peek && peek.text === undefined && peek.close && peek.name === "array") {
          i++;
          return out;
        }
        out.push(value());
      }
    }
    if (t.name === "dict") {
      const out: Record<string, PlistValue> = {};
      for (;;) {
        const k = next();
        if (k.text === undefined && k.close && k.name === "dict") return out;
        if (k.text !== undefined || k.name !== "key") throw new Error("a dict needs <key>");
        const name = next();
        const end = next();
        if (name.text === undefined || end.text !== undefined || end.name !== "key")
          throw new Error("bad <key>");
        out[decode(name.text)] = value();
      }
    }
    throw new Error(`unknown element <${t.name}>`);
  };
  const root = value();
  if (i !== tokens.length) throw new Error("content after the root value");
  return root;
}

describe("launchd property list", () => {
  test("parses, with the label, the exact arguments (XML-escaped), run at load and kept alive", () => {
    const bin = "/Users/ana/Apps & <Tools>/dionysus";
    const plist = parsePlist(
      launchdPlist(spec("edge", "user", bin, "/Users/ana/Library/Application Support/dionysus")),
    );
    expect(plist).toEqual({
      Label: "dev.dionysus.agent",
      ProgramArguments: [bin, "serve", "--data-dir", "/Users/ana/Library/Application Support/dionysus"],
      RunAtLoad: true,
      KeepAlive: { SuccessfulExit: false },
      ProcessType: "Background",
      StandardOutPath: "/home/ana/Library/Logs/dionysus.log",
      StandardErrorPath: "/home/ana/Library/Logs/dionysus.log",
    });
    const vps = parsePlist(
      launchdPlist(spec("vps", "system", "/usr/local/bin/dionysus", "/var/db/dionysus-vps")),
    );
    expect(vps).toMatchObject({
      Label: "dev.dionysus.vps",
      ProgramArguments: ["/usr/local/bin/dionysus", "vps", "serve", "--data-dir", "/var/db/dionysus-vps"],
      StandardOutPath: "/Library/Logs/dionysus-vps.log",
    });
  });

  test("the parser refuses what launchd would (so the check above can fail)", () => {
    expect(() =>
      parsePlist(launchdPlist(spec("edge", "user", "/a", "/b")).replace("<true/>", "<yes/>")),
    ).toThrow();
    expect(() =>
      parsePlist(
        launchdPlist(spec("edge", "user", "/a", "/b")).replace(
          "<string>/a</string>",
          "<string>a & b</string>",
        ),
      ),
    ).toThrow();
  });
});
