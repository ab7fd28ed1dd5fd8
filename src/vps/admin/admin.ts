/**
 * Administration (`dionysus vps user add | user delete | user passwd | key create | key list |
 * key revoke | devices | revoke`), the same operations
 * whether the CLI opens the database itself or calls a running server's loopback `/admin/*` API.
 */

import type { Kysely } from "kysely";
import { DionysusError } from "../../core/errors.ts";
import type { GraphStore } from "../../core/ports/graph-store.ts";
import type { Device } from "../../core/protocol/auth.ts";
import type { ApiKeyInfo, AuthService, RevokedApiKey } from "../auth/service.ts";
import type { VpsTables } from "../db/schema.ts";
import { type DeletedUser, deleteUser, keyOwner, setPassword } from "./users.ts";

export interface CreatedKey {
  id: string;
  key: string;
  prefix: string;
  user_id: string;
}

export interface AdminOps {
  addUser(name: string, password: string | undefined): Promise<{ id: string; name: string }>;
  createKey(user: string): Promise<CreatedKey>;
  listKeys(user: string): Promise<ApiKeyInfo[]>;
  /** Without `user`, the key is looked up among every user's keys. */
  revokeKey(user: string | undefined, key: string): Promise<RevokedApiKey>;
  deleteUser(user: string): Promise<DeletedUser>;
  setPassword(user: string, password: string | undefined): Promise<{ id: string; name: string }>;
  devices(user: string): Promise<Device[]>;
  revoke(deviceId: string, user?: string): Promise<Device>;
}

/** `graph`: the graph store when it lives outside PostgreSQL (Neo4j), so that deleting a user
 * clears it too; the PostgreSQL graph tables are cleared in the deletion's transaction. */
export function createAdminOps(auth: AuthService, db: Kysely<VpsTables>, graph?: GraphStore): AdminOps {
  async function userId(nameOrId: string): Promise<string> {
    const u = await auth.findUser(nameOrId);
    if (!u) throw new DionysusError("not_found", `no user ${nameOrId}`);
    return u.id;
  }
  return {
    addUser: (name, password) => auth.createUser(name, password),
    createKey: (user) => auth.createApiKey(user),
    listKeys: (user) => auth.listApiKeys(user),
    revokeKey: async (user, key) => auth.revokeApiKey(user ?? (await keyOwner(db, key)), key),
    deleteUser: (user) => deleteUser(db, user, graph?.kind === "postgres" ? undefined : graph),
    setPassword: (user, password) => setPassword(db, user, password),
    devices: async (user) => auth.listDevices(await userId(user)),
    async revoke(deviceId, user) {
      if (user) return auth.revokeDevice(await userId(user), deviceId);
      const owners = await auth.usersWithDevice(deviceId);
      if (owners.length === 0) throw new DionysusError("not_found", `no device ${deviceId}`);
      if (owners.length > 1)
        throw new DionysusError(
          "invalid_input",
          `device id ${deviceId} belongs to ${owners.length} users; name one with --user`,
        );
      return auth.revokeDevice(owners[0]!, deviceId);
    },
  };
}
