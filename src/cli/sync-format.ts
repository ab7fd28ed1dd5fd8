/** Human output of the sync commands. */
import type { ConflictEntry } from "../core/protocol/sync.ts";
import type { SyncRun, SyncStatusView } from "../edge/client.ts";
import type { SyncProgress } from "../edge/sync/engine.ts";

export function formatSyncStatus(s: SyncStatusView): string {
  const q = s.queue;
  const auth =
    s.auth === "ok"
      ? `logged in to ${s.vps_url}`
      : s.auth === "reauth_required"
        ? `re-authentication needed: run dionysus login ${s.vps_url ?? "URL"}`
        : "not logged in: run dionysus login URL (local-only until then)";
  const lines = [
    `vps           ${auth}`,
    `connection    ${s.online ? "online" : "offline"}${s.realtime && s.realtime !== "off" ? `, realtime ${s.realtime}` : ""}`,
    `queue         ${q.queued} queued, ${q.syncing} syncing, ${q.synced} synced, ${q.failed} failed`,
    `last success  ${s.last_success_at || "never"}`,
  ];
  if (s.next_attempt_at)
    lines.push(`next attempt  ${s.next_attempt_at} (backoff ${Math.round((s.backoff_ms ?? 0) / 1000)} s)`);
  if (s.last_error) lines.push(`last error    ${s.last_error}`);
  for (const f of s.failed_items ?? [])
    lines.push(
      `failed        ${f.op} ${f.memory_id} (mutation ${f.mutation_id}): ${f.last_error ?? "refused"}`,
    );
  if (s.clock_offset_ms && Math.abs(s.clock_offset_ms) >= 1000)
    lines.push(
      `clock         this device is ${Math.abs(s.clock_offset_ms / 1000).toFixed(1)} s ${s.clock_offset_ms > 0 ? "behind" : "ahead of"} the VPS (corrected)`,
    );
  return lines.join("\n");
}

export function formatSyncRun(r: SyncRun): string {
  const { report } = r;
  const parts = [`pushed ${report.pushed}`, `pulled ${report.pulled}`];
  if (report.rejected) parts.push(`${report.rejected} rejected (see dionysus sync status)`);
  if (report.conflicts) parts.push(`${report.conflicts} conflicts (see dionysus conflicts)`);
  if (report.refetched) parts.push("cache rebuilt from scratch");
  if (report.evicted) parts.push(`${report.evicted} cached memories evicted`);
  return `Sync done: ${parts.join(", ")}.`;
}

/** A one-line progress display on a terminal (stderr), redrawn in place. */
export function progressPrinter(
  stream: NodeJS.WriteStream = process.stderr,
): ((p: SyncProgress) => void) & { done(): void } {
  let drawn = false;
  const print = (p: SyncProgress) => {
    if (!stream.isTTY) return;
    let line: string;
    if (p.total) {
      const width = 30;
      const filled = Math.min(width, Math.round((p.done / p.total) * width));
      line = `${p.phase} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${p.done}/${p.total}`;
    } else line = `${p.phase} ${p.done} changes`;
    stream.write(`\r\x1b[2K${line}`);
    drawn = true;
  };
  return Object.assign(print, {
    done() {
      if (drawn) stream.write("\r\x1b[2K");
    },
  });
}

export function formatConflicts(list: ConflictEntry[]): string {
  if (list.length === 0) return "No conflicts.";
  return list
    .map((c) => {
      const loser = c.loser
        ? c.loser.deleted
          ? "(a delete)"
          : JSON.stringify(c.loser.content.slice(0, 80))
        : "-";
      return `${c.resolved_at.replace("T", " ").slice(0, 19)}  ${c.memory_id}\n    kept ${c.winner_hlc}, overwritten ${c.loser_hlc}: ${loser}`;
    })
    .join("\n");
}
