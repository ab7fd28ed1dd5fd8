/**
 * Webhooks: a device registers a URL; after each write the VPS instance that committed it
 * POSTs a `ChangesEvent` there, signed with HMAC-SHA256 over `<unix seconds>.<body>`. Deliveries are
 * coalesced per webhook (one in flight, carrying the newest seq), retried with backoff, then given
 * up and logged. They never block a push: dispatch only queues. Targets are checked at
 * registration and again at each delivery (see webhook-target.ts), which connects to the
 * address it checked.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Kysely } from "kysely";
import { DionysusError } from "../../core/errors.ts";
import {
  WEBHOOK_SIGNATURE_HEADER,
  type WebhookRequest,
  type WebhookResponse,
} from "../../core/protocol/auth.ts";
import type { ChangesEvent } from "../../core/protocol/sync.ts";
import { uuidv7 } from "../../core/uuid.ts";
import type { Principal } from "../auth/service.ts";
import type { VpsTables } from "../db/schema.ts";
import { type HostLookup, resolveWebhookTarget } from "./webhook-target.ts";

/** `t=<unix s>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export function signWebhook(secret: string, body: string, unixSeconds: number): string {
  const mac = createHmac("sha256", secret).update(`${unixSeconds}.${body}`).digest("hex");
  return `t=${unixSeconds},v1=${mac}`;
}

/** Checks a signature header the way a receiver should (constant time, within `toleranceS`). */
export function verifyWebhookSignature(
  header: string,
  secret: string,
  body: string,
  nowS = Math.floor(Date.now() / 1000),
  toleranceS = 300,
): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) return false;
  const t = Number(m[1]);
  if (Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).slice(-64), "hex");
  return timingSafeEqual(expected, Buffer.from(m[2]!, "hex"));
}

export interface WebhookInfo {
  id: string;
  url: string;
  device_id: string;
  created_at: string;
}

export interface WebhookDispatcherOptions {
  /** Delays before each retry (ms): 1 s, 5 s, 25 s by default; then the delivery is given up. */
  retryDelaysMs?: number[];
  /** Per-attempt timeout (ms), 5 s by default. */
  timeoutMs?: number;
  /** Let webhooks reach non-public addresses (loopback, private networks...). Off by default. */
  allowPrivate?: boolean;
  /** Most webhooks per user, 10 by default. */
  maxPerUser?: number;
  /** Host name resolution (tests inject one). */
  lookup?: HostLookup;
  cursorFor(seq: number): string;
  log(entry: Record<string, unknown>): void;
}

interface Delivery {
  hook: { id: string; url: string; secret: string; user_id: string };
  seq: number;
  attempt: number;
  running: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;

export function createWebhookDispatcher(db: Kysely<VpsTables>, options: WebhookDispatcherOptions) {
  const retryDelays = options.retryDelaysMs ?? [1000, 5000, 25_000];
  const timeoutMs = options.timeoutMs ?? 5000;
  const allowPrivate = options.allowPrivate ?? false;
  const maxPerUser = options.maxPerUser ?? 10;
  const queue = new Map<string, Delivery>();
  let stopped = false;
  // Which users have webhooks, cached briefly so that a push costs no extra query. A webhook
  // registered through another instance is seen here within HOOK_CACHE_MS.
  const HOOK_CACHE_MS = 5000;
  const hookCache = new Map<string, { at: number; hooks: Delivery["hook"][] }>();
  async function hooksOf(userId: string): Promise<Delivery["hook"][]> {
    const hit = hookCache.get(userId);
    if (hit && Date.now() - hit.at < HOOK_CACHE_MS) return hit.hooks;
    const hooks = await db
      .selectFrom("webhooks")
      .select(["id", "url", "secret", "user_id"])
      .where("user_id", "=", userId)
      .execute();
    if (hookCache.size > 10_000) hookCache.clear();
    hookCache.set(userId, { at: Date.now(), hooks });
    return hooks;
  }

  async function attempt(d: Delivery): Promise<void> {
    d.running = true;
    const seq = d.seq;
    const event: ChangesEvent = { seq, cursor: options.cursorFor(seq) };
    const body = JSON.stringify(event);
    let error: string | undefined;
    try {
      // Resolved and checked again now (the name may point elsewhere since registration), and
      // the connection goes to the address that was checked.
      const target = await resolveWebhookTarget(d.hook.url, allowPrivate, options.lookup);
      const res = await fetch(target.pinnedUrl, {
        method: "POST",
        headers: {
          host: target.host,
          "content-type": "application/json",
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(d.hook.secret, body, Math.floor(Date.now() / 1000)),
          "user-agent": "dionysus-vps",
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(timeoutMs),
        ...(target.serverName ? { tls: { serverName: target.serverName } } : {}),
      });
      await res.body?.cancel().catch(() => {});
      if (!res.ok) error = `HTTP ${res.status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    d.running = false;
    if (stopped) return;
    if (!error) {
      if (d.seq > seq) {
        // A newer change arrived while this one was in flight: deliver it too.
        d.attempt = 0;
        void attempt(d);
      } else queue.delete(d.hook.id);
      return;
    }
    const delay = retryDelays[d.attempt];
    if (delay === undefined) {
      options.log({
        level: "warn",
        msg: "webhook delivery given up",
        webhook_id: d.hook.id,
        user_id: d.hook.user_id,
        seq: d.seq,
        attempts: d.attempt + 1,
        error,
      });
      queue.delete(d.hook.id);
      return;
    }
    d.attempt++;
    d.timer = setTimeout(() => {
      d.timer = undefined;
      void attempt(d);
    }, delay);
  }

  return {
    /** Registers a webhook for the caller's device; generates a secret when none is given. */
    async register(p: Principal, req: WebhookRequest): Promise<WebhookResponse> {
      await resolveWebhookTarget(req.url, allowPrivate, options.lookup);
      const secret = req.secret ?? randomBytes(32).toString("base64url");
      const id = uuidv7();
      await db.transaction().execute(async (tx) => {
        // The user row is the lock that keeps concurrent registrations from passing the cap.
        await tx.selectFrom("users").select("id").where("id", "=", p.user_id).forUpdate().executeTakeFirst();
        const { n } = await tx
          .selectFrom("webhooks")
          .select((eb) => eb.fn.countAll<string>().as("n"))
          .where("user_id", "=", p.user_id)
          .executeTakeFirstOrThrow();
        if (Number(n) >= maxPerUser)
          throw new DionysusError(
            "conflict",
            `this account already has ${maxPerUser} webhooks, the most allowed; delete one first`,
            { details: { limit_webhooks: maxPerUser } },
          );
        await tx
          .insertInto("webhooks")
          .values({ user_id: p.user_id, id, device_id: p.device_id, url: req.url, secret })
          .execute();
      });
      hookCache.delete(p.user_id);
      return { id, url: req.url, secret };
    },

    /** The caller's webhooks (every device of the user), without secrets. */
    async list(p: Principal): Promise<WebhookInfo[]> {
      const rows = await db
        .selectFrom("webhooks")
        .select(["id", "url", "device_id", "created_at"])
        .where("user_id", "=", p.user_id)
        .orderBy("created_at")
        .execute();
      return rows.map((r) => ({ ...r, created_at: new Date(r.created_at).toISOString() }));
    },

    async remove(p: Principal, id: string): Promise<void> {
      const r = await db
        .deleteFrom("webhooks")
        .where("user_id", "=", p.user_id)
        .where("id", "=", id)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) throw new DionysusError("not_found", `no webhook ${id}`);
      hookCache.delete(p.user_id);
      queue.delete(id);
    },

    /** Queues a delivery of `seq` to each of the user's webhooks; returns at once. */
    dispatch(userId: string, seq: number): void {
      void (async () => {
        for (const hook of await hooksOf(userId)) {
          const existing = queue.get(hook.id);
          if (existing) {
            existing.seq = Math.max(existing.seq, seq);
            continue;
          }
          const d: Delivery = { hook, seq, attempt: 0, running: false, timer: undefined };
          queue.set(hook.id, d);
          void attempt(d);
        }
      })().catch((err) =>
        options.log({ level: "error", msg: "webhook dispatch failed", error: String(err) }),
      );
    },

    /** Deliveries queued or in flight. */
    get pending(): number {
      return queue.size;
    },

    stop(): void {
      stopped = true;
      for (const d of queue.values()) if (d.timer) clearTimeout(d.timer);
      queue.clear();
    },
  };
}
