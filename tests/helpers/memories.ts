/** Builders for sync mutations in tests. */
import { HlcClock } from "../../src/core/hlc.ts";
import { uuidv7 } from "../../src/core/uuid.ts";

/** Fields a test may set on a memory. Without `scope`, `source` and `occurred_at` the data is
 * what an edge of protocol 1 pushes. */
export interface MemoryExtra {
  kind: string;
  tags: string[];
  metadata: Record<string, unknown>;
  created_at: string;
  scope: string | null;
  source: string;
  occurred_at: string | null;
}

export function memoryData(content: string, extra: Partial<MemoryExtra> = {}) {
  const t = extra.created_at ?? new Date().toISOString();
  const { kind, tags, metadata, created_at: _c, ...added } = extra;
  return {
    content,
    kind: kind ?? "episodic",
    tags: tags ?? [],
    metadata: metadata ?? {},
    created_at: t,
    updated_at: t,
    ...added,
  };
}

/** A device's mutation numbering and clock, as the edge would keep them. */
export class TestDevice {
  next = 1;
  readonly clock: HlcClock;
  constructor(
    readonly deviceId: string,
    now: () => number = Date.now,
  ) {
    this.clock = new HlcClock(deviceId, now);
  }
  create(content: string, extra: Partial<MemoryExtra & { id: string }> = {}) {
    return {
      mutation_id: this.next++,
      op: "create" as const,
      id: extra.id ?? uuidv7(),
      hlc: this.clock.tick(),
      data: memoryData(content, (({ id: _id, ...rest }) => rest)(extra)),
    };
  }
  update(id: string, content: string, hlc = this.clock.tick()) {
    return { mutation_id: this.next++, op: "update" as const, id, hlc, data: memoryData(content) };
  }
  delete(id: string, hlc = this.clock.tick()) {
    return { mutation_id: this.next++, op: "delete" as const, id, hlc };
  }
}
