/**
 * The local API's bearer token: `<data_dir>/api-token`, owner-only (0600) inside the owner-only
 * data dir. `dionysus serve` creates it on its first start and keeps it across restarts; the CLI
 * (and any script of the same user) reads it from there. Another user of the machine cannot read
 * the file, so cannot call the API.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const API_TOKEN_FILE = "api-token";

export const apiTokenPath = (dataDir: string) => join(dataDir, API_TOKEN_FILE);

/** 32 random bytes, base64url (43 characters). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/** The token in the data dir, or undefined when there is none (no daemon ever ran) or it cannot
 * be read (another user's data dir). */
export function readApiToken(dataDir: string): string | undefined {
  try {
    const token = readFileSync(apiTokenPath(dataDir), "utf8").trim();
    return TOKEN_SHAPE.test(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The data dir's token, created (0600, written atomically) when missing or unreadable. Called by
 * the daemon while it holds the data dir's lock, so two starts never race on it. A file whose
 * permissions were widened is made owner-only again.
 */
export function ensureApiToken(dataDir: string): string {
  const path = apiTokenPath(dataDir);
  const existing = readApiToken(dataDir);
  if (existing) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
    return existing;
  }
  const token = randomBytes(32).toString("base64url");
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, `${token}\n`, { mode: 0o600 });
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return token;
}

/** Compares a presented secret with the expected one in constant time (whatever their lengths). */
export function secretMatcher(expected: string): (presented: string) => boolean {
  const want = createHash("sha256").update(expected).digest();
  return (presented) => timingSafeEqual(createHash("sha256").update(presented).digest(), want);
}
