/**
 * The sync lease: only one engine may push for a database at a time, since mutation numbers must
 * reach the VPS in order. The lease lives in the store's meta table (`<owner>|<until ms>`, owner
 * `<pid>-<random>`), is renewed every cycle, and makes a second engine (for example
 * `dionysus sync` while a daemon runs) wait instead of racing.
 */
import { pidAlive } from "../daemon-file.ts";
import type { EdgeStore } from "../store/types.ts";
import { SYNC_META } from "./meta.ts";

/** How long a lease holds without renewal. */
const LEASE_MS = 120_000;

export class SyncLease {
  private readonly owner = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

  constructor(private readonly store: EdgeStore) {}

  /** Takes (or keeps) the lease; false while another live process holds it. Taking it over
   * from another holder puts the rows that holder left `syncing` back in the queue. */
  acquire(): boolean {
    const now = Date.now();
    const [owner, until] = (this.store.getMeta(SYNC_META.lease) ?? "").split("|");
    if (owner && owner !== this.owner && Number(until) > now && leaseHolderAlive(owner)) return false;
    this.store.setMeta(SYNC_META.lease, `${this.owner}|${now + LEASE_MS}`);
    if (owner !== this.owner) this.store.requeueSyncing();
    return true;
  }

  renew(): void {
    this.store.setMeta(SYNC_META.lease, `${this.owner}|${Date.now() + LEASE_MS}`);
  }

  /** Gives the lease up, if this engine holds it. */
  release(): void {
    const [owner] = (this.store.getMeta(SYNC_META.lease) ?? "").split("|");
    if (owner === this.owner) this.store.setMeta(SYNC_META.lease, "");
  }
}

/**
 * Whether the process named in a lease (`<pid>-<random>`) still runs. The data dir is local, so
 * a dead pid means the holder crashed (SIGKILL, power loss) without releasing the lease: its
 * successor must not wait out the rest of it.
 */
function leaseHolderAlive(owner: string): boolean {
  const pid = Number(owner.split("-")[0]);
  return !Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || pidAlive(pid);
}
