/**
 * A kysely dialect for embedded PGlite. PGlite is one connection, so the driver hands it out to
 * one user at a time (a FIFO mutex): a transaction holds it from BEGIN to COMMIT, and every other
 * query waits its turn. The SQL is PostgreSQL, so kysely's Postgres adapter and compiler apply.
 *
 * Failures go through a {@link PgliteGuard}: a full disk becomes the `unavailable` "the disk
 * holding ... is full" error, and after a PANIC (a WAL write failed, for one) the instance is dead:
 * calling into it again would spin its WebAssembly at 100% CPU and block the event loop for good,
 * so every later query fails at once with the error that killed it.
 */
import type { PGlite } from "@electric-sql/pglite";
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from "kysely";
import { DionysusError } from "../../core/errors.ts";
import { diskFullError, freeBytes, isDiskFull, saysDiskFull } from "./data-dir.ts";

/**
 * Watches one PGlite instance's failures: maps disk-full errors, and remembers the fatal one after
 * which the instance must not be called again.
 */
export class PgliteGuard {
  /** Set once the instance is dead; every later use throws it. */
  fatal: DionysusError | undefined;
  private readonly listeners = new Set<(err: DionysusError) => void>();

  constructor(
    /** The data dir named in messages (its disk is the one that fills up). */
    readonly dir: string,
  ) {}

  /**
   * Throws the fatal error if the instance is dead, and refuses a statement that may write while
   * the disk has less than {@link WRITE_RESERVE} free: a write that needs a new WAL segment file
   * there would PANIC, and a PGlite that PANICs inside a write can spin at 100% CPU for good
   * instead of returning. Reads and transaction control still go through.
   */
  check(sqlText?: string): void {
    if (this.fatal) throw this.fatal;
    if (sqlText === undefined || READ_ONLY.test(sqlText)) return;
    const free = freeBytes(this.dir);
    if (free !== undefined && free < WRITE_RESERVE) throw diskFullError(this.dir);
  }

  /** Called once, when the instance dies (at once if it is dead already). */
  onFatal(listener: (err: DionysusError) => void): void {
    if (this.fatal) listener(this.fatal);
    else this.listeners.add(listener);
  }

  /** The error to throw for `err` thrown by PGlite; records it when the instance died of it. */
  map(err: unknown): unknown {
    const severity = (err as { severity?: unknown } | null)?.severity;
    // PANIC/FATAL from Postgres; an ErrnoError or a WebAssembly trap from the runtime underneath.
    const fatal =
      severity === "PANIC" ||
      severity === "FATAL" ||
      (err as { name?: unknown } | null)?.name === "ErrnoError" ||
      err instanceof WebAssembly.RuntimeError;
    if (!fatal) return saysDiskFull(err) ? diskFullError(this.dir, err) : err;
    const mapped = isDiskFull(this.dir, err)
      ? diskFullError(this.dir, err)
      : new DionysusError(
          "unavailable",
          `the embedded database in ${this.dir} stopped after a fatal error (${describe(err)}); restart the vps`,
          { cause: err },
        );
    if (!this.fatal) {
      this.fatal = mapped;
      for (const l of this.listeners) l(mapped);
      this.listeners.clear();
    }
    return mapped;
  }
}

/** Free space below which writes are refused: a WAL segment (16 MiB) plus the largest push twice. */
export const WRITE_RESERVE = 32 * 1024 * 1024;
/** Statements that write no table data and at most a commit record. */
const READ_ONLY =
  /^\s*(select|show|begin|start|commit|end|rollback|savepoint|release|set|reset|listen|unlisten)\b/i;

const describe = (err: unknown) =>
  err instanceof Error
    ? err.message
    : (err as { errno?: unknown })?.errno !== undefined
      ? `errno ${(err as { errno: unknown }).errno}`
      : String(err);

class PgliteConnection implements DatabaseConnection {
  constructor(
    private readonly pg: PGlite,
    private readonly guard: PgliteGuard,
  ) {}

  async executeQuery<R>(q: CompiledQuery): Promise<QueryResult<R>> {
    this.guard.check(q.sql);
    let r: Awaited<ReturnType<PGlite["query"]>> & { rows: R[] };
    try {
      r = await this.pg.query<R>(q.sql, q.parameters as unknown[]);
    } catch (err) {
      throw this.guard.map(err);
    }
    const affected = r.affectedRows;
    return affected !== undefined && r.fields.length === 0
      ? { rows: r.rows, numAffectedRows: BigInt(affected) }
      : { rows: r.rows, ...(affected !== undefined ? { numAffectedRows: BigInt(affected) } : {}) };
  }

  // biome-ignore lint/correctness/useYield: streaming is not supported on PGlite; it throws.
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error("streaming queries are not supported on PGlite");
  }
}

class PgliteDriver implements Driver {
  private readonly conn: PgliteConnection;
  private tail: Promise<void> = Promise.resolve();
  private release: (() => void) | undefined;

  constructor(
    private readonly pg: PGlite,
    guard: PgliteGuard,
  ) {
    this.conn = new PgliteConnection(pg, guard);
  }

  async init(): Promise<void> {
    await this.pg.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    await previous;
    this.release = release;
    return this.conn;
  }

  async beginTransaction(c: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const iso = settings.isolationLevel ? ` isolation level ${settings.isolationLevel}` : "";
    await c.executeQuery(CompiledQuery.raw(`begin${iso}`));
  }

  async commitTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw("commit"));
  }

  async rollbackTransaction(c: DatabaseConnection): Promise<void> {
    await c.executeQuery(CompiledQuery.raw("rollback"));
  }

  async releaseConnection(): Promise<void> {
    const r = this.release;
    this.release = undefined;
    r?.();
  }

  async destroy(): Promise<void> {
    // The PGlite instance is owned by whoever created it (createVpsDatabase closes it).
  }
}

/** kysely dialect over one PGlite instance (owned by the caller). */
export class PgliteDialect implements Dialect {
  constructor(
    private readonly pg: PGlite,
    readonly guard: PgliteGuard,
  ) {}
  createAdapter() {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PgliteDriver(this.pg, this.guard);
  }
  createQueryCompiler() {
    return new PostgresQueryCompiler();
  }
  // biome-ignore lint/suspicious/noExplicitAny: kysely's introspector takes any database.
  createIntrospector(db: Kysely<any>) {
    return new PostgresIntrospector(db);
  }
}
