/**
 * `GET /v1/events`: the server-sent event stream of one device. `changes` events carry the user's
 * newest seq (the device then pulls), `job` events the progress of the user's jobs; a comment
 * every `heartbeatS` keeps proxies from closing a quiet stream. `Last-Event-ID` resumes.
 */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { DionysusError } from "../../../core/errors.ts";
import type { HubStream } from "../../push/hub.ts";
import type { AppEnv, RouteContext } from "../middleware.ts";

export function eventRoutes({ vps, requireAuth }: RouteContext, heartbeatS = 15): Hono<AppEnv> {
  const { sync, hub, heavy } = vps;
  const heartbeatMs = heartbeatS * 1000;
  const app = new Hono<AppEnv>();

  app.get("/v1/events", requireAuth, async (c) => {
    const p = c.get("principal");
    const lastId = c.req.header("last-event-id") ?? c.req.query("last_event_id");
    if (lastId !== undefined && !/^\d{1,15}$/.test(lastId))
      throw new DionysusError("invalid_input", "Last-Event-ID must be a sequence number");
    const current = lastId !== undefined ? (await sync.currentCursor(p.user_id)).seq : 0;
    // A device of this user is online: decode the user's vectors before their first search.
    heavy.vectors.warm(p.user_id);
    // A quiet stream is not idle: Bun would close it after idleTimeout otherwise.
    c.env?.timeout?.(c.req.raw, 0);
    c.header("X-Accel-Buffering", "no");
    return streamSSE(c, async (stream) => {
      let closed = false;
      let wake: () => void = () => {};
      const stream_: HubStream = {
        user_id: p.user_id,
        device_id: p.device_id,
        send(ev) {
          stream
            .writeSSE({ event: "changes", id: String(ev.seq), data: JSON.stringify(ev) })
            .catch(() => stream_.close());
        },
        sendJob(job) {
          stream.writeSSE({ event: "job", data: JSON.stringify(job) }).catch(() => stream_.close());
        },
        close() {
          closed = true;
          wake();
        },
      };
      stream.onAbort(() => stream_.close());
      const remove = hub.add(stream_);
      try {
        await stream.write(": connected\n\n");
        if (lastId !== undefined && current > Number(lastId)) hub.pokeNow(stream_, current);
        while (!closed && !stream.aborted) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, heartbeatMs);
          });
          clearTimeout(timer);
          if (closed || stream.aborted) break;
          await stream.write(": heartbeat\n\n");
        }
      } finally {
        remove();
      }
    });
  });

  return app;
}
