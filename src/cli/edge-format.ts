/** Human output of the edge commands (`--json` prints the API shapes instead). */
import type { LocalMemory } from "../core/memory.ts";
import type { RecallResponse } from "../core/protocol/edge-api.ts";
import type { EdgeStatus } from "../edge/client.ts";

const when = (iso: string) => iso.replace("T", " ").slice(0, 16);

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

export function formatMemoryLine(m: LocalMemory): string {
  const tags = m.tags.length ? `  [${m.tags.join(", ")}]` : "";
  return `${m.id}  ${when(m.updated_at)}  ${oneLine(m.content, 70)}${tags}`;
}

export function formatMemory(m: LocalMemory): string {
  const lines = [
    m.content,
    "",
    `id        ${m.id}`,
    `kind      ${m.kind}`,
    `tags      ${m.tags.length ? m.tags.join(", ") : "-"}`,
    `scope     ${m.scope ?? "-"}`,
    `source    ${m.source}`,
    `created   ${m.created_at}`,
    `updated   ${m.updated_at}`,
    `origin    ${m.origin === "local" ? `written on this device (${m.synced_at ? `synced ${m.synced_at}` : "not synced yet"})` : "from the VPS"}`,
  ];
  if (m.occurred_at) lines.push(`occurred  ${m.occurred_at}`);
  if (m.private) lines.push("private   yes (kept on this device, never sent to the VPS)");
  if (Object.keys(m.metadata).length) lines.push(`metadata  ${JSON.stringify(m.metadata)}`);
  return lines.join("\n");
}

export function formatRecall(r: RecallResponse, query: string): string {
  const note =
    (r.degraded && r.reason ? `\nnote: ${r.reason}` : "") +
    (r.time
      ? `\ntime: "${r.time.phrase}" read as ${r.time.since.slice(0, 10)} to ${r.time.until.slice(0, 10)} (UTC, ${r.time.use})`
      : "");
  if (r.results.length === 0) return `No memories match "${oneLine(query, 60)}".${note}`;
  const lines = r.results.map(
    (h, i) =>
      `${String(i + 1).padStart(2)}. ${h.memory.id}  ${when(h.memory.updated_at)}\n    ${oneLine(h.snippet, 100)}`,
  );
  const n = r.results.length;
  lines.push(
    `${n} ${n === 1 ? "memory" : "memories"} in ${r.took_ms} ms (${r.routed === "cache" ? "VPS answer from the local cache" : r.routed}${r.degraded ? ", degraded" : ""})`,
  );
  return lines.join("\n") + note;
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function formatStatus(s: EdgeStatus): string {
  const q = s.queue;
  return [
    `dionysus ${s.version}, device ${s.device_id}`,
    s.daemon
      ? `daemon    running at ${s.daemon.url} (pid ${s.daemon.pid}, since ${s.daemon.started_at})`
      : "daemon    not running (this command opened the database directly)",
    `data dir  ${s.data_dir}`,
    `database  ${s.database.path} (${bytes(s.database.bytes)})`,
    `memories  ${s.memories < 0 ? "unknown" : s.memories}`,
    `sync      ${q.queued} queued, ${q.syncing} syncing, ${q.synced} synced, ${q.failed} failed`,
    `vps       ${s.auth === "none" ? "not logged in (local-only)" : s.auth === "ok" ? (s.online ? "online" : "offline") : "login expired, run dionysus login"}`,
  ].join("\n");
}
