/**
 * The edge's VPS credentials: `<data dir>/credentials.json`, owner-only (0600), written
 * atomically (temp file + rename) so a crash never leaves half a token file.
 */
import { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { DionysusError } from "../../core/errors.ts";

export const Credentials = z.object({
  vps_url: z.string().url(),
  user_id: z.string(),
  device_id: z.string(),
  access_token: z.string(),
  /** Unix ms when the access token expires. */
  access_expires_at: z.number(),
  refresh_token: z.string(),
  /** Set when a refresh was refused: the user must run `dionysus login` again. */
  reauth_required: z.boolean().default(false),
});
export type Credentials = z.infer<typeof Credentials>;

export const credentialsPath = (dataDir: string): string => join(dataDir, "credentials.json");

export function readCredentials(dataDir: string): Credentials | undefined {
  const path = credentialsPath(dataDir);
  if (!existsSync(path)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (cause) {
    throw new DionysusError("config_invalid", `${path} is not valid JSON; run dionysus login again`, {
      cause,
    });
  }
  const r = Credentials.safeParse(raw);
  if (!r.success) throw new DionysusError("config_invalid", `${path} is malformed; run dionysus login again`);
  return r.data;
}

export function writeCredentials(dataDir: string, creds: Credentials): void {
  const path = credentialsPath(dataDir);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(creds, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

export function deleteCredentials(dataDir: string): boolean {
  const path = credentialsPath(dataDir);
  if (!existsSync(path)) return false;
  rmSync(path);
  return true;
}

/** Modification time of the credentials file (0 when absent), to notice a new login. */
export function credentialsMtime(dataDir: string): number {
  try {
    return statSync(credentialsPath(dataDir)).mtimeMs;
  } catch {
    return 0;
  }
}
