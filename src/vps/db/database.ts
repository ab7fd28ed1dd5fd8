/**
 * Opens the VPS database: PostgreSQL through `pg` when a URL is configured, otherwise embedded
 * PGlite in `<data_dir>/pgdata`. Both get the same migrations and the same kysely schema, and both
 * can LISTEN/NOTIFY (PGlite within its one process).
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import initdbWasmPath from "@electric-sql/pglite/initdb.wasm" with { type: "file" };
import pgliteDataPath from "@electric-sql/pglite/pglite.data" with { type: "file" };
import pgliteWasmPath from "@electric-sql/pglite/pglite.wasm" with { type: "file" };
import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { VpsConfig } from "../../core/config.ts";
import { DionysusError } from "../../core/errors.ts";
import {
  checkFreeSpace,
  diskFullError,
  holdPrivateUmask,
  isDiskFull,
  MIN_FREE_EXISTING,
  MIN_FREE_NEW,
  makeOwnerOnly,
} from "./data-dir.ts";
import { migrateToLatest } from "./migrations.ts";
import { PgliteDialect, PgliteGuard } from "./pglite-dialect.ts";
import type { VpsTables } from "./schema.ts";

/** The opened database, its kind and its notification channel. */
export interface VpsDatabase {
  readonly db: Kysely<VpsTables>;
  readonly kind: "postgres" | "pglite";
  /** Subscribes to NOTIFY on `channel`; resolves once listening. Returns the unsubscribe function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** True when a trivial query succeeds. */
  ping(): Promise<boolean>;
  /**
   * Told once if the database dies under the process (PGlite after a PANIC, e.g. a WAL write on a
   * full disk): it cannot be used again and the process should stop. Never on PostgreSQL.
   */
  onFatal(listener: (err: DionysusError) => void): void;
  /** Applies pending migrations (on PostgreSQL through `direct_database_url` when it is set: the
   * migrator holds a session-level lock); returns the names applied. */
  migrate(): Promise<string[]>;
  /** PGlite only: the data dir as a gzipped tarball (what `vps backup` stores). */
  dumpDataDir?(): Promise<Blob>;
  close(): Promise<void>;
}

export interface CreateVpsDatabaseOptions {
  /** Apply pending migrations on open (default true). */
  migrate?: boolean;
  /** Pool size for PostgreSQL (default 10). */
  poolSize?: number;
  /** Told about what opening did to an embedded data dir (file modes it fixed). */
  log?: (entry: Record<string, unknown>) => void;
  /**
   * Least free space (bytes) on the embedded database's disk for it to be opened; defaults to
   * 64 MiB for a new database, 32 MiB for an existing one.
   */
  minFreeBytes?: number;
  /** PGlite only: create the database from this data-dir tarball (`vps restore`; the data dir
   * must be empty). */
  loadDataDir?: Blob;
}

const INT8_OID = 20;
const pgTypes = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === INT8_OID
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/** Opens (and by default migrates) the database `config` points to. */
export async function createVpsDatabase(
  config: Pick<VpsConfig, "database_url" | "data_dir"> & Partial<Pick<VpsConfig, "direct_database_url">>,
  options: CreateVpsDatabaseOptions = {},
): Promise<VpsDatabase> {
  const vdb = config.database_url
    ? await openPostgres(config.database_url, options.poolSize ?? 10, config.direct_database_url)
    : await openPglite(config.data_dir, options);
  if (options.migrate ?? true) {
    try {
      await vdb.migrate();
    } catch (err) {
      await vdb.close();
      throw err;
    }
  }
  return vdb;
}

/**
 * `url` serves the requests (it may be a PgBouncer in transaction pooling: no named prepared
 * statements, no `SET`, notifications sent inside the writing transaction). `directUrl`, when
 * given, is for what needs one session throughout: the LISTEN connections and the migrator's
 * advisory lock.
 */
async function openPostgres(url: string, poolSize: number, directUrl: string = url): Promise<VpsDatabase> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types: pgTypes });
  // An idle client's error (the server restarted) must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  pool.on("connect", (client) => coalesceWrites(client));
  try {
    const c = await pool.connect();
    c.release();
  } catch (cause) {
    await pool.end().catch(() => {});
    throw new DionysusError("unavailable", `cannot connect to PostgreSQL: ${(cause as Error).message}`, {
      cause,
    });
  }
  const db = new Kysely<VpsTables>({ dialect: new PostgresDialect({ pool }) });
  const listeners = new Set<PgListener>();
  return {
    db,
    kind: "postgres",
    async listen(channel, onPayload) {
      const l = new PgListener(directUrl, channel, onPayload);
      listeners.add(l);
      await l.start();
      return async () => {
        listeners.delete(l);
        await l.stop();
      };
    },
    ping: () => ping(db),
    async migrate() {
      if (directUrl === url) return migrateToLatest(db);
      const direct = new Kysely<VpsTables>({
        dialect: new PostgresDialect({
          pool: new pg.Pool({ connectionString: directUrl, max: 1, types: pgTypes }),
        }),
      });
      try {
        return await migrateToLatest(direct);
      } finally {
        await direct.destroy();
      }
    },
    onFatal() {},
    async close() {
      await Promise.all([...listeners].map((l) => l.stop()));
      await db.destroy();
    },
  };
}

/**
 * pg sends the messages of one extended-protocol query (parse, bind, describe, execute, sync) as
 * separate writes between `cork()` and `uncork()`. Bun's socket does not coalesce corked writes, so
 * each became its own syscall, which was the largest CPU cost of a push. While corked, this collects
 * them and writes them as one buffer on `uncork()`.
 */
function coalesceWrites(client: pg.PoolClient): void {
  const stream = (client as unknown as { connection?: { stream?: CorkableStream } }).connection?.stream;
  if (!stream || typeof stream.write !== "function") return;
  const write = stream.write.bind(stream);
  let corked = false;
  let pending: Uint8Array[] = [];
  stream.cork = () => {
    corked = true;
  };
  stream.uncork = () => {
    corked = false;
    if (pending.length === 0) return;
    const chunks = pending;
    pending = [];
    write(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
  };
  stream.write = ((chunk: Uint8Array, ...rest: unknown[]) => {
    if (corked && rest.length === 0 && chunk instanceof Uint8Array) {
      pending.push(chunk);
      return true;
    }
    return write(chunk, ...(rest as []));
  }) as CorkableStream["write"];
}

interface CorkableStream {
  write(chunk: Uint8Array, ...rest: unknown[]): boolean;
  cork(): void;
  uncork(): void;
}

/** A dedicated connection holding LISTEN, reconnecting after a lost connection. */
class PgListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly url: string,
    private readonly channel: string,
    private readonly onPayload: (payload: string) => void,
  ) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on("notification", (n) => {
      if (n.channel === this.channel && n.payload !== undefined) this.onPayload(n.payload);
    });
    const lost = () => {
      if (this.client !== client) return;
      this.client = undefined;
      client.end().catch(() => {});
      this.retry();
    };
    client.on("error", lost);
    client.on("end", lost);
    await client.connect();
    await client.query(`LISTEN ${pg.escapeIdentifier(this.channel)}`);
    this.client = client;
  }

  private retry(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.start().catch(() => this.retry());
    }, 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    await c?.end().catch(() => {});
  }
}

let wasmModules: Promise<{ pglite: WebAssembly.Module; initdb: WebAssembly.Module }> | undefined;

/** PGlite's assets are imported as files so that `bun build --compile` embeds them. */
function loadWasm() {
  wasmModules ??= (async () => {
    const [pglite, initdb] = await Promise.all([
      Bun.file(pgliteWasmPath)
        .arrayBuffer()
        .then((b) => WebAssembly.compile(b)),
      Bun.file(initdbWasmPath)
        .arrayBuffer()
        .then((b) => WebAssembly.compile(b)),
    ]);
    return { pglite, initdb };
  })();
  return wasmModules;
}

/**
 * Opens the embedded database in `<dataDir>/pgdata`, owner-only (see data-dir.ts) and only with
 * room on its disk. A failure to open is one `unavailable` error; on a full disk it says so.
 */
async function openPglite(dataDir: string, options: CreateVpsDatabaseOptions): Promise<VpsDatabase> {
  const dir = join(dataDir, "pgdata");
  const releaseUmask = holdPrivateUmask();
  let pgl: PGlite;
  const guard = new PgliteGuard(dataDir);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fixed = makeOwnerOnly(dataDir);
    if (fixed > 0)
      options.log?.({
        level: "warn",
        msg: "made the data dir owner-only",
        dir: dataDir,
        modes_fixed: fixed,
      });
    const existing = existsSync(join(dir, "PG_VERSION"));
    checkFreeSpace(dataDir, options.minFreeBytes ?? (existing ? MIN_FREE_EXISTING : MIN_FREE_NEW));
    const wasm = await loadWasm();
    try {
      pgl = await PGlite.create(dir, {
        pgliteWasmModule: wasm.pglite,
        initdbWasmModule: wasm.initdb,
        fsBundle: Bun.file(pgliteDataPath),
        ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      });
      // PGlite chmods every file it creates to 0666 itself (the umask keeps only its dirs private).
      makeOwnerOnly(dir);
    } catch (cause) {
      if (isDiskFull(dataDir, cause)) throw diskFullError(dataDir, cause);
      throw new DionysusError(
        "unavailable",
        `cannot open the embedded database in ${dir}: ${describeCause(cause)}`,
        { cause },
      );
    }
  } catch (err) {
    releaseUmask();
    throw (err as { code?: unknown }).code === "ENOSPC" ? diskFullError(dataDir, err) : err;
  }
  const db = new Kysely<VpsTables>({ dialect: new PgliteDialect(pgl, guard) });
  return {
    db,
    kind: "pglite",
    async listen(channel, onPayload) {
      guard.check();
      let unsubscribe: () => Promise<void>;
      try {
        unsubscribe = await pgl.listen(channel, onPayload);
      } catch (err) {
        throw guard.map(err);
      }
      return async () => {
        if (!pgl.closed && !guard.fatal) await unsubscribe();
      };
    },
    ping: () => ping(db),
    migrate: () => migrateToLatest(db),
    onFatal: (listener) => guard.onFatal(listener),
    dumpDataDir: () => pgl.dumpDataDir("gzip"),
    async close() {
      try {
        await db.destroy();
        // A dead instance is left alone: calling into it spins forever.
        if (!pgl.closed && !guard.fatal) await pgl.close();
        makeOwnerOnly(dir);
      } finally {
        releaseUmask();
      }
    },
  };
}

/** PGlite throws objects that are not Errors (emscripten's ErrnoError): name them usefully. */
function describeCause(cause: unknown): string {
  if (cause instanceof Error) return cause.message;
  const errno = (cause as { errno?: unknown } | null)?.errno;
  if (errno !== undefined) return `file system error (errno ${String(errno)})`;
  return String(cause);
}

async function ping(db: Kysely<VpsTables>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
