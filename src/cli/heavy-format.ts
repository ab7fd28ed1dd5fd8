/** Human output of the heavy-query commands (`graph`, `consolidate`, `ask`). */
import type { Job } from "../core/protocol/heavy.ts";
import type { GraphAnswer } from "../edge/heavy/service.ts";

const when = (iso: string) => iso.replace("T", " ").slice(0, 16);

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function formatGraph(g: GraphAnswer, entity: string): string {
  const from = g.routed === "cache" ? "VPS answer from the local cache" : "VPS";
  if (g.nodes.length === 0) return `No entity "${oneLine(entity, 60)}" in the knowledge graph (${from}).`;
  const name = new Map(g.nodes.map((n) => [n.id, n.name]));
  const root = g.nodes[0]!;
  const lines = [`${root.name} (${root.type}, ${plural(root.mentions, "memory", "memories")})`];
  const maxDepth = Math.max(...g.nodes.map((n) => n.depth));
  for (let d = 1; d <= maxDepth; d++) {
    const at = g.nodes.filter((n) => n.depth === d).map((n) => `${n.name} (${n.type}, ${n.mentions})`);
    if (at.length) lines.push(`  ${plural(d, "hop")}: ${at.join(", ")}`);
  }
  if (g.edges.length) {
    lines.push("relations:");
    for (const e of g.edges)
      lines.push(
        `  ${name.get(e.from) ?? e.from} —${e.type}— ${name.get(e.to) ?? e.to} (${plural(e.weight, "memory", "memories")})`,
      );
  }
  if (g.memories.length) {
    lines.push("memories:");
    for (const m of g.memories)
      lines.push(`  ${m.memory.id}  ${when(m.memory.updated_at)}  ${oneLine(m.memory.content, 70)}`);
  }
  lines.push(
    `${plural(g.nodes.length, "entity", "entities")}, ${plural(g.edges.length, "relation")}, ${plural(g.memories.length, "memory", "memories")} in ${g.took_ms} ms (${from})`,
  );
  return lines.join("\n");
}

export function formatJob(j: Job): string {
  const head = `consolidation ${j.id}: ${j.status}`;
  if (j.status === "failed") return `${head}\n  error: ${j.error ?? "unknown"}`;
  if (j.status !== "done" || !j.result) return `${head} (started ${j.created_at})`;
  const r = j.result as {
    merged_groups?: number;
    tombstoned?: number;
    summary_memory_id?: string | null;
    graph_refreshed?: number;
  };
  return [
    head,
    `  merged    ${plural(r.merged_groups ?? 0, "group")} of duplicates (${plural(r.tombstoned ?? 0, "memory", "memories")} folded into their oldest copy)`,
    `  graph     ${plural(r.graph_refreshed ?? 0, "memory", "memories")} re-read for the knowledge graph`,
    `  summary   ${r.summary_memory_id ? `written as memory ${r.summary_memory_id}` : "none (nothing new since the last one)"}`,
    `  finished  ${j.finished_at ?? "-"}`,
  ].join("\n");
}
