/** Builders for sync mutations in tests. */
import { HlcClock } from "../../src/core/hlc.ts";
import { uuidv7 } from "../../src/core/uuid.ts";

export function memoryData(content: string, extra: Partial<{ kind: string; tags: string[] }> = {}) {
  const t = new Date().toISOString();
  return {
    content,
    kind: extra.kind ?? "episodic",
    tags: extra.tags ?? [],
    metadata: {},
    created_at: t,
    updated_at: t,
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
  create(content: string, extra: Partial<{ kind: string; tags: string[]; id: string }> = {}) {
    return {
      mutation_id: this.next++,
      op: "create" as const,
      id: extra.id ?? uuidv7(),
      hlc: this.clock.tick(),
      data: memoryData(content, extra),
    };
  }
  update(id: string, content: string, hlc = this.clock.tick()) {
    return { mutation_id: this.next++, op: "update" as const, id, hlc, data: memoryData(content) };
  }
  delete(id: string, hlc = this.clock.tick()) {
    return { mutation_id: this.next++, op: "delete" as const, id, hlc };
  }
}
