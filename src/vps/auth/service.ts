/**
 * Users, API keys, devices and tokens (docs/vps.md). Every secret is stored as a hash: API keys,
 * access and refresh tokens and device codes as SHA-256 (they are long random strings), passwords
 * as argon2id. Access tokens are opaque and looked up on every request, so revoking a device stops
 * its tokens at once.
 */
import type { Kysely, Transaction } from "kysely";
import { DionysusError } from "../../core/errors.ts";
import type {
  Device,
  DeviceAuthorizationRequest,
  DeviceAuthorizationResponse,
  DeviceInfo,
  TokenResponse,
} from "../../core/protocol/auth.ts";
import { uuidv7 } from "../../core/uuid.ts";
import { notifyChannel } from "../db/channel.ts";
import type { DeviceRow, VpsTables } from "../db/schema.ts";
import { OAuthFailure } from "./errors.ts";
import { normaliseUserCode, randomSecret, randomUserCode, SECRET_PREFIX, sha256Hex } from "./secrets.ts";

/** Who is calling: always taken from the access token, never from the request. */
export interface Principal {
  user_id: string;
  user_name: string;
  device_id: string;
}

export interface AuthServiceOptions {
  access_token_ttl_s: number;
  refresh_token_ttl_s: number;
  /** Lifetime of a device code (RFC 8628 `expires_in`), 600 s by default. */
  device_code_ttl_s?: number;
  /** Polling interval the device is told (RFC 8628 `interval`), 5 s by default. */
  device_code_interval_s?: number;
  /** Most devices (not revoked) per user; a new one beyond is refused. 100 by default. */
  max_devices_per_user?: number;
  /** Injectable clock (ms), for tests. */
  now?: () => number;
}

/** An API key as listings show it: never the key itself, only its first characters. */
export interface ApiKeyInfo {
  id: string;
  prefix: string;
  user_id: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A revoked API key, and the devices whose sign-ins with it were ended by this revocation. */
export interface RevokedApiKey extends ApiKeyInfo {
  signed_out_devices: string[];
}

export const USER_NAME_RE = /^[A-Za-z0-9_.@-]{1,64}$/;
export const MIN_PASSWORD_LENGTH = 8;

type Db = Kysely<VpsTables> | Transaction<VpsTables>;

export const toDevice = (r: DeviceRow): Device => ({
  device_id: r.device_id,
  user_id: r.user_id,
  device_name: r.device_name,
  platform: r.platform,
  created_at: new Date(r.created_at).toISOString(),
  last_seen: r.last_seen ? new Date(r.last_seen).toISOString() : null,
  revoked_at: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
});

const isoOrNull = (d: Date | string | null) => (d ? new Date(d).toISOString() : null);

const toKeyInfo = (r: {
  id: string;
  prefix: string;
  user_id: string;
  created_at: Date | string;
  last_used_at: Date | string | null;
  revoked_at: Date | string | null;
}): ApiKeyInfo => ({
  id: r.id,
  prefix: r.prefix,
  user_id: r.user_id,
  created_at: new Date(r.created_at).toISOString(),
  last_used_at: isoOrNull(r.last_used_at),
  revoked_at: isoOrNull(r.revoked_at),
});

export type AuthService = ReturnType<typeof createAuthService>;

/** Auth operations over the VPS database. */
export function createAuthService(db: Kysely<VpsTables>, options: AuthServiceOptions) {
  const now = options.now ?? Date.now;
  const codeTtl = options.device_code_ttl_s ?? 600;
  const codeInterval = options.device_code_interval_s ?? 5;
  const maxDevices = options.max_devices_per_user ?? 100;
  // A hash to verify against when the user does not exist, so timing does not reveal user names.
  const dummyHash = Bun.password.hash("dionysus-dummy-password", { algorithm: "argon2id" });

  async function findUser(nameOrId: string) {
    return db
      .selectFrom("users")
      .select(["id", "name"])
      .where((eb) => eb.or([eb("name", "=", nameOrId), eb("id", "=", nameOrId)]))
      .executeTakeFirst();
  }

  async function requireUser(nameOrId: string) {
    const u = await findUser(nameOrId);
    if (!u) throw new DionysusError("not_found", `no user ${nameOrId}`);
    return u;
  }

  /** Devices of the user that are not revoked. */
  async function activeDevices(tx: Db, userId: string): Promise<number> {
    const r = await tx
      .selectFrom("devices")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  const tooManyDevices = () =>
    `this account already has ${maxDevices} devices, the most allowed; revoke one (dionysus vps revoke, or DELETE /v1/devices/:id) and sign in again`;

  /** Registers the device on first sight, refreshes its name/platform and last_seen otherwise. */
  async function registerDevice(tx: Db, userId: string, info: DeviceInfo): Promise<void> {
    const existing = await tx
      .selectFrom("devices")
      .select(["revoked_at"])
      .where("user_id", "=", userId)
      .where("device_id", "=", info.device_id)
      .executeTakeFirst();
    if (existing?.revoked_at)
      throw new OAuthFailure(
        "invalid_grant",
        `device ${info.device_id} was revoked; sign in from a new device id`,
      );
    const ts = new Date(now());
    if (existing) {
      await tx
        .updateTable("devices")
        .set({
          last_seen: ts,
          ...(info.device_name ? { device_name: info.device_name } : {}),
          ...(info.platform ? { platform: info.platform } : {}),
        })
        .where("user_id", "=", userId)
        .where("device_id", "=", info.device_id)
        .execute();
    } else {
      // The user row is the lock that keeps concurrent sign-ins from passing the cap together.
      await tx.selectFrom("users").select("id").where("id", "=", userId).forUpdate().executeTakeFirst();
      if ((await activeDevices(tx, userId)) >= maxDevices)
        throw new OAuthFailure("invalid_grant", tooManyDevices());
      await tx
        .insertInto("devices")
        .values({
          user_id: userId,
          device_id: info.device_id,
          device_name: info.device_name ?? null,
          platform: info.platform ?? null,
          created_at: ts,
          last_seen: ts,
          revoked_at: null,
        })
        .onConflict((oc) => oc.columns(["user_id", "device_id"]).doUpdateSet({ last_seen: ts }))
        .execute();
    }
  }

  /** Issues an access and a refresh token for a device; `apiKeyId` is the API key the sign-in
   * was made with (kept through refreshes and splits, so that revoking the key ends it). */
  async function issueTokens(
    tx: Db,
    userId: string,
    deviceId: string,
    familyId: string = uuidv7(),
    apiKeyId: string | null = null,
  ): Promise<TokenResponse> {
    const access = randomSecret(SECRET_PREFIX.access);
    const refresh = randomSecret(SECRET_PREFIX.refresh);
    const t = now();
    await tx
      .insertInto("auth_tokens")
      .values([
        {
          user_id: userId,
          token_hash: sha256Hex(access),
          kind: "access",
          device_id: deviceId,
          family_id: familyId,
          api_key_id: apiKeyId,
          expires_at: new Date(t + options.access_token_ttl_s * 1000),
          created_at: new Date(t),
          used_at: null,
          revoked_at: null,
        },
        {
          user_id: userId,
          token_hash: sha256Hex(refresh),
          kind: "refresh",
          device_id: deviceId,
          family_id: familyId,
          api_key_id: apiKeyId,
          expires_at: new Date(t + options.refresh_token_ttl_s * 1000),
          created_at: new Date(t),
          used_at: null,
          revoked_at: null,
        },
      ])
      .execute();
    return {
      access_token: access,
      token_type: "Bearer",
      expires_in: options.access_token_ttl_s,
      refresh_token: refresh,
      user_id: userId,
      device_id: deviceId,
    };
  }

  return {
    findUser,

    /** Creates a user; the password (if any) is stored as argon2id. */
    async createUser(name: string, password?: string): Promise<{ id: string; name: string }> {
      if (!USER_NAME_RE.test(name))
        throw new DionysusError("invalid_input", "user name: 1-64 letters, digits, or _ . @ -");
      if (password !== undefined && password.length < MIN_PASSWORD_LENGTH)
        throw new DionysusError("invalid_input", `password: at least ${MIN_PASSWORD_LENGTH} characters`);
      const password_hash =
        password === undefined ? null : await Bun.password.hash(password, { algorithm: "argon2id" });
      const id = uuidv7(now());
      const inserted = await db
        .insertInto("users")
        .values({ id, name, password_hash })
        .onConflict((oc) => oc.column("name").doNothing())
        .returning(["id", "name"])
        .executeTakeFirst();
      if (!inserted) throw new DionysusError("conflict", `user ${name} already exists`);
      return inserted;
    },

    /** The user when name and password match, else undefined (constant work either way). */
    async verifyPassword(name: string, password: string): Promise<{ id: string; name: string } | undefined> {
      const u = await db
        .selectFrom("users")
        .select(["id", "name", "password_hash"])
        .where("name", "=", name)
        .executeTakeFirst();
      const hash = u?.password_hash ?? (await dummyHash);
      const ok = await Bun.password.verify(password, hash).catch(() => false);
      return ok && u?.password_hash ? { id: u.id, name: u.name } : undefined;
    },

    /**
     * Whether the user may connect this device: it is known already, or the user is below the
     * device cap. The approval page asks before approving, so the user sees why at once.
     */
    async deviceRoomFor(
      userId: string,
      deviceId: string,
    ): Promise<{ ok: true } | { ok: false; reason: string }> {
      const known = await db
        .selectFrom("devices")
        .select("device_id")
        .where("user_id", "=", userId)
        .where("device_id", "=", deviceId)
        .executeTakeFirst();
      if (known || (await activeDevices(db, userId)) < maxDevices) return { ok: true };
      return { ok: false, reason: tooManyDevices() };
    },

    /** A user's API keys, oldest first (prefixes only). */
    async listApiKeys(user: string): Promise<ApiKeyInfo[]> {
      const u = await requireUser(user);
      const rows = await db
        .selectFrom("api_keys")
        .select(["id", "prefix", "user_id", "created_at", "last_used_at", "revoked_at"])
        .where("user_id", "=", u.id)
        .orderBy("created_at")
        .orderBy("id")
        .execute();
      return rows.map(toKeyInfo);
    },

    /**
     * Revokes one of the user's API keys, named by its id or its prefix (as `key list` shows
     * them). It can no longer be exchanged for tokens, and every sign-in made with it ends: the
     * tokens of those devices are revoked (sign-ins older than migration 0008 are not tied to a
     * key; revoke such a device itself). Idempotent.
     */
    async revokeApiKey(user: string, idOrPrefix: string): Promise<RevokedApiKey> {
      const u = await requireUser(user);
      const matches = await db
        .selectFrom("api_keys")
        .select("id")
        .where("user_id", "=", u.id)
        .where((eb) => eb.or([eb("id", "=", idOrPrefix), eb("prefix", "=", idOrPrefix)]))
        .execute();
      if (matches.length === 0)
        throw new DionysusError("not_found", `user ${u.name} has no API key ${idOrPrefix}`);
      if (matches.length > 1)
        throw new DionysusError(
          "invalid_input",
          `${idOrPrefix} matches ${matches.length} keys; give the key id`,
        );
      const t = new Date(now());
      const keyId = matches[0]!.id;
      return db.transaction().execute(async (tx) => {
        const r = await tx
          .updateTable("api_keys")
          .set((eb) => ({ revoked_at: eb.fn.coalesce("revoked_at", eb.val(t)) }))
          .where("user_id", "=", u.id)
          .where("id", "=", keyId)
          .returning(["id", "prefix", "user_id", "created_at", "last_used_at", "revoked_at"])
          .executeTakeFirstOrThrow();
        // A leaked key must not keep working through the devices signed in with it: their tokens
        // go too (the devices stay registered; their owner signs them in again with a new key).
        const ended = await tx
          .updateTable("auth_tokens")
          .set({ revoked_at: t })
          .where("user_id", "=", u.id)
          .where("api_key_id", "=", keyId)
          .where("revoked_at", "is", null)
          .returning("device_id")
          .execute();
        return { ...toKeyInfo(r), signed_out_devices: [...new Set(ended.map((e) => e.device_id))].sort() };
      });
    },

    /** Creates an API key for a user; the key is returned once and stored hashed. */
    async createApiKey(user: string): Promise<{ id: string; key: string; prefix: string; user_id: string }> {
      const u = await requireUser(user);
      const key = randomSecret(SECRET_PREFIX.apiKey);
      const id = uuidv7(now());
      const prefix = key.slice(0, 12);
      await db
        .insertInto("api_keys")
        .values({ user_id: u.id, id, key_hash: sha256Hex(key), prefix })
        .execute();
      return { id, key, prefix, user_id: u.id };
    },

    /** API-key grant: registers the device and issues tokens. */
    async tokenForApiKey(apiKey: string, device: DeviceInfo): Promise<TokenResponse> {
      const k = await db
        .selectFrom("api_keys")
        .select(["user_id", "id"])
        .where("key_hash", "=", sha256Hex(apiKey))
        .where("revoked_at", "is", null)
        .executeTakeFirst();
      if (!k) throw new OAuthFailure("invalid_grant", "the API key is wrong or revoked");
      return db.transaction().execute(async (tx) => {
        await tx
          .updateTable("api_keys")
          .set({ last_used_at: new Date(now()) })
          .where("user_id", "=", k.user_id)
          .where("id", "=", k.id)
          .execute();
        await registerDevice(tx, k.user_id, device);
        return issueTokens(tx, k.user_id, device.device_id, undefined, k.id);
      });
    },

    /** RFC 8628 §3.1–3.2: a new device code and user code for a device. */
    async startDeviceAuthorization(
      req: DeviceAuthorizationRequest,
      verificationUri: string,
    ): Promise<DeviceAuthorizationResponse> {
      const deviceCode = randomSecret(SECRET_PREFIX.deviceCode);
      const userCode = randomUserCode();
      const t = now();
      await db
        .insertInto("device_codes")
        .values({
          device_code_hash: sha256Hex(deviceCode),
          user_code_hash: sha256Hex(normaliseUserCode(userCode)),
          device_id: req.device_id,
          device_name: req.device_name ?? null,
          platform: req.platform ?? null,
          client_id: req.client_id ?? null,
          status: "pending",
          user_id: null,
          interval_s: codeInterval,
          last_polled_at: null,
          expires_at: new Date(t + codeTtl * 1000),
          created_at: new Date(t),
        })
        .execute();
      // Expired codes are of no use to anyone: clear them out now and then.
      await db
        .deleteFrom("device_codes")
        .where("expires_at", "<", new Date(t - 3600_000))
        .execute();
      return {
        device_code: deviceCode,
        user_code: userCode,
        verification_uri: verificationUri,
        verification_uri_complete: `${verificationUri}?code=${encodeURIComponent(userCode)}`,
        expires_in: codeTtl,
        interval: codeInterval,
      };
    },

    /** What the approval page shows about a pending code; undefined when unknown or expired. */
    async pendingUserCode(userCode: string) {
      const r = await db
        .selectFrom("device_codes")
        .select(["device_id", "device_name", "platform", "status", "expires_at"])
        .where("user_code_hash", "=", sha256Hex(normaliseUserCode(userCode)))
        .executeTakeFirst();
      if (r?.status !== "pending" || new Date(r.expires_at).getTime() <= now()) return undefined;
      return r;
    },

    /** The user's decision on the approval page. Throws not_found for an unknown/used/expired code. */
    async decideUserCode(userCode: string, decision: "approve" | "deny", userId?: string): Promise<void> {
      if (decision === "approve" && !userId) throw new Error("approve needs a user");
      const r = await db
        .updateTable("device_codes")
        .set(decision === "approve" ? { status: "approved", user_id: userId ?? null } : { status: "denied" })
        .where("user_code_hash", "=", sha256Hex(normaliseUserCode(userCode)))
        .where("status", "=", "pending")
        .where("expires_at", ">", new Date(now()))
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) === 0)
        throw new DionysusError("not_found", "this code is unknown, already used, or expired");
    },

    /** RFC 8628 §3.4–3.5: the device polls with its device code. */
    async pollDeviceCode(deviceCode: string): Promise<TokenResponse> {
      const hash = sha256Hex(deviceCode);
      const outcome = await db.transaction().execute(async (tx): Promise<TokenResponse | OAuthFailure> => {
        const r = await tx
          .selectFrom("device_codes")
          .selectAll()
          .where("device_code_hash", "=", hash)
          .forUpdate()
          .executeTakeFirst();
        if (!r || r.status === "consumed")
          return new OAuthFailure("invalid_grant", "unknown or used device_code");
        const t = now();
        if (new Date(r.expires_at).getTime() <= t)
          return new OAuthFailure("expired_token", "the device code expired; start again");
        if (r.status === "denied") return new OAuthFailure("access_denied", "the user denied the request");
        const last = r.last_polled_at ? new Date(r.last_polled_at).getTime() : undefined;
        if (r.status === "pending" && last !== undefined && t - last < r.interval_s * 1000) {
          // RFC 8628 §3.5: slow_down, and the interval grows by 5 s for this and later requests.
          await tx
            .updateTable("device_codes")
            .set({ last_polled_at: new Date(t), interval_s: r.interval_s + 5 })
            .where("device_code_hash", "=", hash)
            .execute();
          return new OAuthFailure(
            "slow_down",
            `polling too fast; wait ${r.interval_s + 5} s between requests`,
          );
        }
        if (r.status === "pending" || !r.user_id) {
          await tx
            .updateTable("device_codes")
            .set({ last_polled_at: new Date(t) })
            .where("device_code_hash", "=", hash)
            .execute();
          return new OAuthFailure("authorization_pending", "waiting for the user to approve the code");
        }
        await tx
          .updateTable("device_codes")
          .set({ status: "consumed", last_polled_at: new Date(t) })
          .where("device_code_hash", "=", hash)
          .execute();
        const info: DeviceInfo = { device_id: r.device_id };
        if (r.device_name) info.device_name = r.device_name;
        if (r.platform) info.platform = r.platform;
        await registerDevice(tx, r.user_id, info);
        return issueTokens(tx, r.user_id, r.device_id);
      });
      // The poll bookkeeping (last_polled_at, interval) must commit, so failures are thrown after it.
      if (outcome instanceof OAuthFailure) throw outcome;
      return outcome;
    },

    /** Rotates a refresh token. Reuse of an already rotated token revokes its whole family. */
    async refresh(refreshToken: string): Promise<TokenResponse> {
      const hash = sha256Hex(refreshToken);
      const outcome = await db.transaction().execute(async (tx) => {
        const r = await tx
          .selectFrom("auth_tokens")
          .selectAll()
          .where("token_hash", "=", hash)
          .where("kind", "=", "refresh")
          .forUpdate()
          .executeTakeFirst();
        if (!r) return new OAuthFailure("invalid_grant", "unknown refresh token");
        const t = now();
        if (r.used_at) {
          await tx
            .updateTable("auth_tokens")
            .set({ revoked_at: new Date(t) })
            .where("user_id", "=", r.user_id)
            .where("family_id", "=", r.family_id)
            .where("revoked_at", "is", null)
            .execute();
          return new OAuthFailure(
            "invalid_grant",
            "refresh token already used; every token of this sign-in is now revoked",
          );
        }
        if (r.revoked_at) return new OAuthFailure("invalid_grant", "refresh token revoked");
        if (new Date(r.expires_at).getTime() <= t)
          return new OAuthFailure("invalid_grant", "refresh token expired");
        const dev = await tx
          .selectFrom("devices")
          .select(["revoked_at"])
          .where("user_id", "=", r.user_id)
          .where("device_id", "=", r.device_id)
          .executeTakeFirst();
        if (!dev || dev.revoked_at) return new OAuthFailure("invalid_grant", "the device was revoked");
        await tx
          .updateTable("auth_tokens")
          .set({ used_at: new Date(t) })
          .where("user_id", "=", r.user_id)
          .where("token_hash", "=", hash)
          .execute();
        await tx
          .updateTable("devices")
          .set({ last_seen: new Date(t) })
          .where("user_id", "=", r.user_id)
          .where("device_id", "=", r.device_id)
          .execute();
        return issueTokens(tx, r.user_id, r.device_id, r.family_id, r.api_key_id);
      });
      // The family revocation above must commit, so the failure is thrown after the transaction.
      if (outcome instanceof OAuthFailure) throw outcome;
      return outcome;
    },

    /**
     * Device split grant: the holder of a live refresh token of device D asks for a new device of
     * the same user (its data dir is a copy of D's). The new device gets its own token family;
     * the presented token is left as it is, so D (the original) is not disturbed. A token that is
     * unknown, used, revoked or expired is refused and nothing is revoked: a restored backup
     * holds an old token without being a thief.
     */
    async splitDevice(refreshToken: string, device: DeviceInfo): Promise<TokenResponse> {
      const hash = sha256Hex(refreshToken);
      const outcome = await db.transaction().execute(async (tx) => {
        const r = await tx
          .selectFrom("auth_tokens")
          .selectAll()
          .where("token_hash", "=", hash)
          .where("kind", "=", "refresh")
          .executeTakeFirst();
        const t = now();
        if (!r || r.used_at || r.revoked_at || new Date(r.expires_at).getTime() <= t)
          return new OAuthFailure(
            "invalid_grant",
            "the refresh token of this copy is no longer current; sign in again with dionysus login",
          );
        const from = await tx
          .selectFrom("devices")
          .select(["revoked_at", "device_name", "platform"])
          .where("user_id", "=", r.user_id)
          .where("device_id", "=", r.device_id)
          .executeTakeFirst();
        if (!from || from.revoked_at) return new OAuthFailure("invalid_grant", "the device was revoked");
        const taken = await tx
          .selectFrom("devices")
          .select("device_id")
          .where("device_id", "=", device.device_id)
          .executeTakeFirst();
        if (taken)
          return new OAuthFailure("invalid_request", `device id ${device.device_id} is already registered`);
        await tx.selectFrom("users").select("id").where("id", "=", r.user_id).forUpdate().executeTakeFirst();
        if ((await activeDevices(tx, r.user_id)) >= maxDevices)
          return new OAuthFailure("invalid_grant", tooManyDevices());
        const ts = new Date(t);
        await tx
          .insertInto("devices")
          .values({
            user_id: r.user_id,
            device_id: device.device_id,
            device_name: device.device_name ?? `${from.device_name ?? r.device_id} (copy)`,
            platform: device.platform ?? from.platform,
            created_at: ts,
            last_seen: ts,
            revoked_at: null,
            split_from: r.device_id,
          })
          .execute();
        return issueTokens(tx, r.user_id, device.device_id, undefined, r.api_key_id);
      });
      if (outcome instanceof OAuthFailure) throw outcome;
      return outcome;
    },

    /** The caller of an access token, or undefined when it is unknown, expired or revoked. */
    async authenticate(accessToken: string): Promise<Principal | undefined> {
      const r = await db
        .selectFrom("auth_tokens as t")
        .innerJoin("devices as d", (j) =>
          j.onRef("d.user_id", "=", "t.user_id").onRef("d.device_id", "=", "t.device_id"),
        )
        .innerJoin("users as u", "u.id", "t.user_id")
        .select(["t.user_id", "t.device_id", "u.name as user_name"])
        .where("t.token_hash", "=", sha256Hex(accessToken))
        .where("t.kind", "=", "access")
        .where("t.revoked_at", "is", null)
        .where("t.expires_at", ">", new Date(now()))
        .where("d.revoked_at", "is", null)
        .executeTakeFirst();
      return r;
    },

    /** Marks a device as seen now. */
    async touchDevice(userId: string, deviceId: string): Promise<void> {
      await db
        .updateTable("devices")
        .set({ last_seen: new Date(now()) })
        .where("user_id", "=", userId)
        .where("device_id", "=", deviceId)
        .execute();
    },

    /** A user's devices, oldest first. */
    async listDevices(userId: string): Promise<Device[]> {
      const rows = await db
        .selectFrom("devices")
        .selectAll()
        .where("user_id", "=", userId)
        .orderBy("created_at")
        .orderBy("device_id")
        .execute();
      return rows.map(toDevice);
    },

    /** Users having a device with this id (to resolve `vps revoke DEVICE` without `--user`). */
    async usersWithDevice(deviceId: string): Promise<string[]> {
      const rows = await db
        .selectFrom("devices")
        .select("user_id")
        .where("device_id", "=", deviceId)
        .execute();
      return rows.map((r) => r.user_id);
    },

    /** Revokes one of the user's devices and every token it holds. Idempotent. */
    async revokeDevice(userId: string, deviceId: string): Promise<Device> {
      return db.transaction().execute(async (tx) => {
        const t = new Date(now());
        const d = await tx
          .updateTable("devices")
          .set((eb) => ({ revoked_at: eb.fn.coalesce("revoked_at", eb.val(t)) }))
          .where("user_id", "=", userId)
          .where("device_id", "=", deviceId)
          .returningAll()
          .executeTakeFirst();
        if (!d) throw new DionysusError("not_found", `no device ${deviceId}`);
        await tx
          .updateTable("auth_tokens")
          .set({ revoked_at: t })
          .where("user_id", "=", userId)
          .where("device_id", "=", deviceId)
          .where("revoked_at", "is", null)
          .execute();
        await tx
          .deleteFrom("webhooks")
          .where("user_id", "=", userId)
          .where("device_id", "=", deviceId)
          .execute();
        await notifyChannel(tx, { type: "revoke", user_id: userId, device_id: deviceId });
        return toDevice(d);
      });
    },
  };
}
