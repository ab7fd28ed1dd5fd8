/**
 * Admin operations on whole users and on keys by id alone: `vps user delete` (every row of the
 * user, in one transaction), `vps user passwd`, and finding whose an API key is (`vps key revoke
 * KEY_ID`). The tables of the memories, devices, tokens, jobs and the rest reference `users` with
 * `on delete cascade`; the graph tables (shared with other stores, so without that foreign key) are
 * cleared explicitly.
 */
import type { Kysely } from "kysely";
import { DionysusError } from "../../core/errors.ts";
import type { GraphStore } from "../../core/ports/graph-store.ts";
import { MIN_PASSWORD_LENGTH } from "../auth/service.ts";
import type { VpsTables } from "../db/schema.ts";
import { GRAPH_TABLES } from "../graph/postgres/postgres-graph-store.ts";

async function requireUser(db: Kysely<VpsTables>, nameOrId: string): Promise<{ id: string; name: string }> {
  const u = await db
    .selectFrom("users")
    .select(["id", "name"])
    .where((eb) => eb.or([eb("name", "=", nameOrId), eb("id", "=", nameOrId)]))
    .executeTakeFirst();
  if (!u) throw new DionysusError("not_found", `no user ${nameOrId}`);
  return u;
}

export interface DeletedUser {
  id: string;
  name: string;
  memories: number;
  devices: number;
}

/**
 * Deletes the user and every row that belongs to them, in one transaction. With a graph store
 * outside PostgreSQL (Neo4j), the user's graph there is removed first (if that fails, nothing is
 * deleted and the error says why) and once more after the transaction, for anything a worker
 * wrote in between.
 */
export async function deleteUser(
  db: Kysely<VpsTables>,
  nameOrId: string,
  externalGraph?: GraphStore,
): Promise<DeletedUser> {
  if (externalGraph) await externalGraph.removeUser((await requireUser(db, nameOrId)).id);
  const deleted = await db.transaction().execute(async (tx) => {
    const u = await requireUser(tx, nameOrId);
    const count = async (table: "memories" | "devices") =>
      Number(
        (
          await tx
            .selectFrom(table)
            .select((eb) => eb.fn.countAll().as("n"))
            .where("user_id", "=", u.id)
            .executeTakeFirstOrThrow()
        ).n,
      );
    const memories = await count("memories");
    const devices = await count("devices");
    for (const t of GRAPH_TABLES) await tx.deleteFrom(t).where("user_id", "=", u.id).execute();
    await tx.deleteFrom("users").where("id", "=", u.id).execute();
    return { ...u, memories, devices };
  });
  await externalGraph?.removeUser(deleted.id);
  return deleted;
}

/** Sets (replaces) the user's password; their signed-in devices stay signed in. */
export async function setPassword(
  db: Kysely<VpsTables>,
  nameOrId: string,
  password: string | undefined,
): Promise<{ id: string; name: string }> {
  if (password === undefined || password.length < MIN_PASSWORD_LENGTH)
    throw new DionysusError("invalid_input", `password: at least ${MIN_PASSWORD_LENGTH} characters`);
  const u = await requireUser(db, nameOrId);
  const password_hash = await Bun.password.hash(password, { algorithm: "argon2id" });
  await db.updateTable("users").set({ password_hash }).where("id", "=", u.id).execute();
  return u;
}

/** The user owning the API key named by its id or prefix (any user). */
export async function keyOwner(db: Kysely<VpsTables>, idOrPrefix: string): Promise<string> {
  const rows = await db
    .selectFrom("api_keys")
    .select("user_id")
    .where((eb) => eb.or([eb("id", "=", idOrPrefix), eb("prefix", "=", idOrPrefix)]))
    .execute();
  if (rows.length === 0) throw new DionysusError("not_found", `no API key ${idOrPrefix}`);
  if (rows.length > 1)
    throw new DionysusError("invalid_input", `${idOrPrefix} matches ${rows.length} keys; give the key id`);
  return rows[0]!.user_id;
}
