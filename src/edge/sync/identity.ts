/**
 * The device-identity split. A data dir that was copied or restored (noticed by the store when
 * opened, or by the VPS as `device_diverged`) must not push under the original's device id: the
 * VPS holds other writes under its mutation numbers. It asks the VPS for a device id of its own
 * with the split grant; memories and queued writes stay, the writes go out under the new id.
 */
import { DionysusError } from "../../core/errors.ts";
import { uuidv7 } from "../../core/uuid.ts";
import type { EdgeStore } from "../store/types.ts";
import { SYNC_META } from "./meta.ts";
import type { SyncSession } from "./session.ts";

/**
 * Makes sure this data dir pushes as a device of its own. The steps are ordered so that a crash
 * anywhere leaves a state the next cycle finishes: the target id is recorded first, then the
 * credentials, then the store.
 */
export async function ensureIdentity(
  store: EdgeStore,
  session: SyncSession,
  log: (event: Record<string, unknown>) => void,
): Promise<void> {
  const creds = session.credentials();
  const target = store.getMeta(SYNC_META.splitTarget);
  if (target && creds.device_id === target && store.deviceId !== target) {
    store.resetDeviceId(target);
    store.setMeta(SYNC_META.splitTarget, "");
  }
  const why = store.splitPending();
  if (!why) return;
  const from = store.deviceId;
  const newId = uuidv7();
  store.setMeta(SYNC_META.splitTarget, newId);
  const r = await session.client().splitDevice(creds.refresh_token, { device_id: newId });
  if (!r.ok) {
    // The copy's refresh token was rotated since (by the original, or by the device before a
    // rollback). Go on locally under the new id; `dionysus login` registers it.
    store.resetDeviceId(newId);
    store.setMeta(SYNC_META.splitTarget, "");
    session.save({ ...creds, reauth_required: true });
    log({ event: "device_split", from, to: newId, reason: why, vps: r.error.error });
    throw new DionysusError(
      "unauthorized",
      `this data dir was copied or restored (${why}) and its sign-in is no longer current: run dionysus login (memories and queued writes are kept)`,
    );
  }
  session.save({
    ...creds,
    device_id: r.token.device_id,
    access_token: r.token.access_token,
    refresh_token: r.token.refresh_token,
    access_expires_at: Date.now() + r.token.expires_in * 1000,
    reauth_required: false,
  });
  store.resetDeviceId(r.token.device_id);
  store.setMeta(SYNC_META.splitTarget, "");
  log({ event: "device_split", from, to: r.token.device_id, reason: why });
}
