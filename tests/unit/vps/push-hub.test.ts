import { describe, expect, test } from "bun:test";
import type { ChangesEvent } from "../../../src/core/protocol/sync.ts";
import { type HubStream, PushHub } from "../../../src/vps/push/hub.ts";

function stream(user: string, device: string) {
  const sent: ChangesEvent[] = [];
  let closed = false;
  const s: HubStream = {
    user_id: user,
    device_id: device,
    send: (e) => sent.push(e),
    close: () => {
      closed = true;
    },
  };
  return { s, sent, isClosed: () => closed };
}

describe("PushHub", () => {
  test("a burst of pokes gives one immediate poke and one trailing poke with the newest seq", async () => {
    const hub = new PushHub({ cursorFor: (seq) => `ep.${seq}`, coalesceMs: 30 });
    const a = stream("u1", "d1");
    hub.add(a.s);
    for (let seq = 1; seq <= 10; seq++) hub.poke("u1", seq);
    expect(a.sent).toEqual([{ seq: 1, cursor: "ep.1" }]);
    while (a.sent.length < 2) await Bun.sleep(10);
    expect(a.sent).toEqual([
      { seq: 1, cursor: "ep.1" },
      { seq: 10, cursor: "ep.10" },
    ]);
    // An older or equal seq after that is not news.
    hub.poke("u1", 7);
    await Bun.sleep(60);
    expect(a.sent).toHaveLength(2);
  });

  test("pokes reach only the streams of their user; revocation closes one device's streams", () => {
    const hub = new PushHub({ cursorFor: String });
    const a = stream("u1", "d1");
    const b = stream("u2", "d1");
    const c = stream("u1", "d2");
    hub.add(a.s);
    hub.add(b.s);
    const removeC = hub.add(c.s);
    hub.poke("u1", 3);
    expect(a.sent.map((e) => e.seq)).toEqual([3]);
    expect(c.sent.map((e) => e.seq)).toEqual([3]);
    expect(b.sent).toEqual([]);
    expect(hub.connections).toBe(3);
    expect(hub.devices).toBe(3);
    hub.disconnectDevice("u1", "d1");
    expect(a.isClosed()).toBe(true);
    expect(b.isClosed()).toBe(false);
    removeC();
    expect(hub.connections).toBe(1);
  });
});
