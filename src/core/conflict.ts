/**
 * Last-write-wins and the conflict log: the one rule the edge store (applying a pulled version)
 * and the VPS (applying a pushed write) both follow.
 *
 * The version with the greater HLC stamp wins; equal stamps are the same version. The loser is
 * logged as a conflict only when the two writes were concurrent, that is when the winner's writer
 * had not seen the loser. The two sides know different things about the versions they hold, so
 * what differs is passed in `ResolveOptions` rather than decided here.
 */
import { compareHlc, parseHlc } from "./hlc.ts";

/** What the rule reads of a memory version. */
export interface Version {
  hlc: string;
  deleted: boolean;
  origin_device: string;
}

export interface ResolveOptions<V extends Version> {
  /**
   * The stamp of the version the incoming writer had seen (`base_hlc`): `undefined` when the
   * sender did not say (older peers), `null` for a create.
   */
  incomingBase?: string | null;
  /**
   * Whether a conflict can be about the current version at all. The edge logs only its own
   * local writes (a cached VPS version that is replaced is just an update); the VPS logs any
   * stored version. Default true.
   */
  contestable?: boolean;
  /**
   * Without `incomingBase`: `"conflict"` takes every overwrite of a contestable version for a
   * conflict (the edge); `"other-device"` only one whose current version came from another
   * device than the incoming one (the VPS).
   */
  withoutBase: "conflict" | "other-device";
  /** The stamp the current version replaced (the edge keeps it): an older incoming version with
   * exactly that stamp is history the current version was written on, not a conflict. */
  currentBase?: string | null;
  /** This node's id (the edge): an older incoming version stamped by this node is its own
   * history coming back, not a conflict. */
  ownNode?: string;
  /** Two versions with the same user-visible state are never a conflict (the edge compares
   * content; without it only two tombstones count as the same, and only when incoming wins). */
  sameState?: (a: V, b: V) => boolean;
}

/**
 * `winner`: `"incoming"` replaces the current version (also when there is none), `"current"`
 * keeps it, `"same"` means both carry the same stamp. `conflict`: the loser (the current version
 * when incoming wins, else the incoming one) goes to the conflict log.
 */
export type Resolution =
  | { winner: "incoming" | "current"; conflict: boolean }
  | { winner: "same"; conflict: false };

/** Decides last-write-wins between the stored `current` version and an `incoming` one. Pure. */
export function resolve<V extends Version>(
  current: V | undefined,
  incoming: V,
  opts: ResolveOptions<V>,
): Resolution {
  if (current === undefined) return { winner: "incoming", conflict: false };
  const order = compareHlc(incoming.hlc, current.hlc);
  if (order === 0) return { winner: "same", conflict: false };
  const contestable = opts.contestable ?? true;
  const same = (a: V, b: V) => opts.sameState?.(a, b) ?? false;
  if (order < 0) {
    const ownHistory =
      incoming.hlc === opts.currentBase ||
      (opts.ownNode !== undefined && parseHlc(incoming.hlc)?.node === opts.ownNode);
    return { winner: "current", conflict: contestable && !ownHistory && !same(current, incoming) };
  }
  const concurrent =
    contestable &&
    (opts.incomingBase === undefined
      ? opts.withoutBase === "conflict" || current.origin_device !== incoming.origin_device
      : opts.incomingBase !== current.hlc);
  const bothDeleted = current.deleted && incoming.deleted;
  return { winner: "incoming", conflict: concurrent && !bothDeleted && !same(current, incoming) };
}
