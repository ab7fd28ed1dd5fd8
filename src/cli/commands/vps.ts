/**
 * `dionysus vps ...`: the VPS role of the binary. `serve` runs the server, `migrate` applies the
 * schema, and the admin commands (`user add`, `key create | list | revoke`, `devices`, `revoke`) work on the
 * database directly, or, when a `vps serve` holds an embedded (PGlite) data dir, through that
 * server's loopback-only admin API.
 */
import { mkdirSync } from "node:fs";
import { type Command, Option } from "commander";
import { DionysusError, fromProblem } from "../../core/errors.ts";
import type { Device } from "../../core/protocol/auth.ts";
import type { AdminOps } from "../../vps/admin/admin.ts";
import type { ApiKeyInfo } from "../../vps/auth/service.ts";
import type { ServerFile } from "../../vps/server.ts";
import { loadVpsConfig } from "../env.ts";
import { action, printJson, reportError } from "../output.ts";
import { confirm } from "../prompt.ts";
import { registerVpsBackup } from "./backup.ts";
import { registerVpsHealth } from "./vps-health.ts";

export interface DbFlags {
  dataDir?: string;
  databaseUrl?: string;
  directDatabaseUrl?: string;
  json?: boolean;
}

export function configFrom(flags: DbFlags & { port?: string; host?: string; logLevel?: string }) {
  return loadVpsConfig({
    dataDir: flags.dataDir,
    database_url: flags.databaseUrl,
    direct_database_url: flags.directDatabaseUrl,
    port: flags.port,
    host: flags.host,
    log_level: flags.logLevel,
  });
}

/** Admin operations over a running server's `/admin/*` API. */
function httpAdminOps(server: ServerFile): AdminOps {
  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${server.admin_url}${path}`, {
        method,
        headers: { authorization: `Bearer ${server.admin_token}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (cause) {
      throw new DionysusError(
        "unavailable",
        `the running vps (pid ${server.pid}) does not answer at ${server.admin_url}`,
        {
          cause,
        },
      );
    }
    const data: unknown = await res.json().catch(() => ({}));
    if (!res.ok) throw fromProblem(res.status, data, `admin API answered ${res.status}`);
    return data as T;
  }
  return {
    addUser: (name, password) => call("POST", "/admin/users", { name, ...(password ? { password } : {}) }),
    createKey: (user) => call("POST", "/admin/keys", { user }),
    listKeys: async (user) =>
      (await call<{ keys: ApiKeyInfo[] }>("GET", `/admin/keys?user=${encodeURIComponent(user)}`)).keys,
    revokeKey: (user, key) => call("POST", "/admin/keys/revoke", { key, ...(user ? { user } : {}) }),
    deleteUser: (user) => call("POST", "/admin/users/delete", { user }),
    setPassword: (user, password) => call("POST", "/admin/users/password", { user, password }),
    devices: async (user) =>
      (await call<{ devices: Device[] }>("GET", `/admin/devices?user=${encodeURIComponent(user)}`)).devices,
    revoke: (device, user) => call("POST", "/admin/revoke", { device, ...(user ? { user } : {}) }),
  };
}

/**
 * The VPS modules (PGlite, kysely, pg, the NLP library, neo4j-driver) are loaded only when a vps
 * command runs: the edge commands, `dionysus serve` above all, start faster and smaller for it.
 */
async function vpsModules() {
  const [admin, auth, database, migrations, lock, server] = await Promise.all([
    import("../../vps/admin/admin.ts"),
    import("../../vps/auth/service.ts"),
    import("../../vps/db/database.ts"),
    import("../../vps/db/migrations.ts"),
    import("../../vps/db/pglite-lock.ts"),
    import("../../vps/server.ts"),
  ]);
  return { ...admin, ...auth, ...database, ...migrations, ...lock, ...server };
}

/**
 * Runs admin operations: through a running server's admin API when one holds the embedded data
 * dir, else on the database directly (holding the data-dir lock on PGlite).
 */
async function withAdmin<T>(flags: DbFlags, fn: (ops: AdminOps) => Promise<T>): Promise<T> {
  const config = configFrom(flags);
  const {
    readServerFile,
    tryLockPglite,
    describeHolder,
    createVpsDatabase,
    createAuthService,
    createAdminOps,
  } = await vpsModules();
  let release = () => {};
  if (!config.database_url) {
    mkdirSync(config.data_dir, { recursive: true });
    const deadline = Date.now() + 30_000;
    for (;;) {
      const running = readServerFile(config.data_dir);
      if (running) return fn(httpAdminOps(running));
      const lock = tryLockPglite(config.data_dir);
      if ("release" in lock) {
        release = lock.release;
        break;
      }
      // A server may be starting (its vps.json comes once it listens): wait for it.
      if (Date.now() > deadline)
        throw new DionysusError("busy", `${describeHolder(lock.holder)} has ${config.data_dir} open`);
      await Bun.sleep(200);
    }
  }
  let database: Awaited<ReturnType<typeof createVpsDatabase>>;
  try {
    database = await createVpsDatabase(config, { poolSize: 2 });
  } catch (err) {
    release();
    throw err;
  }
  try {
    const auth = createAuthService(database.db, {
      access_token_ttl_s: config.access_token_ttl_s,
      refresh_token_ttl_s: config.refresh_token_ttl_s,
      max_devices_per_user: config.max_devices_per_user,
    });
    // A graph in Neo4j is the user's data too: `user delete` clears it (see admin/users.ts).
    const graph = config.neo4j_url
      ? (await import("../../vps/graph/neo4j/neo4j-graph-store.ts")).createNeo4jGraphStore({
          url: config.neo4j_url,
          user: config.neo4j_user,
          password: config.neo4j_password ?? "",
        })
      : undefined;
    try {
      return await fn(createAdminOps(auth, database.db, graph));
    } finally {
      await graph?.close();
    }
  } finally {
    await database.close();
    release();
  }
}

/** Prints `err` as one line and exits now, whatever else (a half-open PGlite) is still running. */
function exitWith(err: unknown): never {
  process.exit(reportError(err));
}

/**
 * Testing knob: DIONYSUS_DEBUG_VPS_MIN_FREE_BYTES replaces the free-space floor below which the
 * embedded database refuses to start, to reach what happens past it on a nearly full disk.
 */
function startOptions(): { minFreeBytes?: number } {
  const v = process.env.DIONYSUS_DEBUG_VPS_MIN_FREE_BYTES;
  return v !== undefined && v !== "" && Number.isFinite(Number(v)) ? { minFreeBytes: Number(v) } : {};
}

/** The command that runs this binary again: a compiled binary is its own program (its script lives
 * in Bun's embedded file system); from source, Bun runs the entry script. */
function selfCommand(): string[] {
  const script = process.argv[1];
  const embedded = !script || script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/");
  return embedded ? [process.execPath] : [process.execPath, script];
}

/** Reads a password: from the terminal without echo, or the first line of piped stdin. */
async function readPassword(): Promise<string | undefined> {
  if (!process.stdin.isTTY) {
    const text = await Bun.stdin.text();
    const line = text.split(/\r?\n/)[0] ?? "";
    return line === "" ? undefined : line;
  }
  process.stderr.write("Password: ");
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding("utf8");
  return new Promise((resolve, reject) => {
    let value = "";
    const done = (result: string | undefined, err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off("data", onData);
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(result);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return done(value);
        if (ch === "\u0003") return done(undefined, new DionysusError("invalid_input", "cancelled"));
        if (ch === "\u007f" || ch === "\b") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}

export const withDbOptions = (c: Command) =>
  c
    .option("--data-dir <dir>", "VPS data directory (embedded database, config.json)")
    .option("--database-url <url>", "PostgreSQL URL (else DATABASE_URL, else embedded PGlite)")
    .option(
      "--direct-database-url <url>",
      "PostgreSQL URL for LISTEN and migrations when --database-url is a transaction-pooling PgBouncer",
    );

function printDevices(devices: Device[]): void {
  if (devices.length === 0) {
    process.stdout.write("no devices\n");
    return;
  }
  for (const d of devices)
    process.stdout.write(
      `${d.device_id}\t${d.device_name ?? "-"}\t${d.platform ?? "-"}\tlast seen ${d.last_seen ?? "never"}${
        d.revoked_at ? `\trevoked ${d.revoked_at}` : ""
      }\n`,
    );
}

export function registerVps(program: Command): void {
  const vps = program
    .command("vps")
    .description("run and administer the VPS server (canonical store, sync API)")
    // `--data-dir` is also a global option (the edge's); commander gives it to the program when
    // it appears after `vps ...`, so hand it back to the vps subcommand that was run.
    .hook("preAction", (_vps, actionCmd) => {
      const { dataDir } = actionCmd.optsWithGlobals<{ dataDir?: string }>();
      if (dataDir && !actionCmd.opts().dataDir) actionCmd.setOptionValue("dataDir", dataDir);
    });

  withDbOptions(
    vps
      .command("serve")
      .description("serve the sync API (PostgreSQL with --database-url, else embedded PGlite)")
      .option("--port <port>", "port to listen on (default 8000)")
      .option("--host <host>", "address to bind (default 0.0.0.0)")
      .option("--log-level <level>", "least important log lines written: debug, info, warn, error")
      .option(
        "--no-worker",
        "API only: run no job worker (PostgreSQL only; another instance or `vps worker` does the jobs)",
      ),
  ).action(
    action(async (flags: DbFlags & { port?: string; host?: string; logLevel?: string; worker: boolean }) => {
      const config = configFrom(flags);
      if (!flags.worker && !config.database_url) {
        const { PGLITE_ONE_PROCESS } = await import("../../vps/worker-process.ts");
        throw new DionysusError("invalid_input", `--no-worker: ${PGLITE_ONE_PROCESS}`);
      }
      const { startVpsServer } = await vpsModules();
      // On PostgreSQL the job worker runs as a child process (`vps worker`), off the API's event
      // loop; on PGlite it stays in this process (see src/vps/worker-process.ts).
      const worker = !flags.worker ? "off" : config.database_url ? "process" : "in-process";
      // A failed start exits at once: a PGlite that failed to open may keep the process alive.
      const running = await startVpsServer(config, {
        ...startOptions(),
        worker,
        workerCommand: selfCommand(),
      }).catch(exitWith);
      process.stderr.write(`dionysus vps listening on ${running.url} (pid ${process.pid})\n`);
      const fatal = await new Promise<DionysusError | undefined>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve(undefined);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
        running.fatal.then(resolve);
      });
      if (!fatal) return running.stop();
      // The database died under the server (a full disk): the requests in flight get their 503,
      // then the process says why and exits non-zero.
      await Promise.race([running.stop({ graceful: true }).catch(() => {}), Bun.sleep(5_000)]);
      exitWith(fatal);
    }),
  );

  registerVpsHealth(vps);

  withDbOptions(
    vps
      .command("worker")
      .description("run the background job worker alone (embeddings, graph, consolidation; PostgreSQL only)")
      // Set by `vps serve` for its child: stop when the parent's end of stdin closes.
      .addOption(new Option("--exit-with-stdin").hideHelp()),
  ).action(
    action(async (flags: DbFlags & { exitWithStdin?: boolean }) => {
      const config = configFrom(flags);
      const { runVpsWorker } = await import("../../vps/worker-process.ts");
      const running = await runVpsWorker(config);
      process.stderr.write(`dionysus vps worker running (pid ${process.pid})\n`);
      await new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
        if (flags.exitWithStdin)
          void (async () => {
            for await (const _ of Bun.stdin.stream());
            resolve();
          })();
      });
      await running.stop();
    }),
  );

  withDbOptions(vps.command("migrate").description("apply pending database migrations"))
    .option("--json", "print JSON")
    .action(
      action(async (flags: DbFlags) => {
        const config = configFrom(flags);
        const { readServerFile, tryLockPglite, describeHolder, createVpsDatabase } = await vpsModules();
        let release = () => {};
        if (!config.database_url) {
          if (readServerFile(config.data_dir))
            throw new DionysusError(
              "busy",
              "a vps serve is running on this data dir; it applied the migrations when it started",
            );
          mkdirSync(config.data_dir, { recursive: true, mode: 0o700 });
          const lock = tryLockPglite(config.data_dir);
          if (!("release" in lock))
            throw new DionysusError("busy", `${describeHolder(lock.holder)} has ${config.data_dir} open`);
          release = lock.release;
        }
        const database = await createVpsDatabase(config, { migrate: false, poolSize: 1 }).catch((err) => {
          release();
          return exitWith(err);
        });
        try {
          const applied = await database.migrate();
          if (flags.json) printJson({ applied });
          else
            process.stdout.write(applied.length ? `applied ${applied.join(", ")}\n` : "already up to date\n");
        } finally {
          await database.close();
          release();
        }
      }),
    );

  const user = vps.command("user").description("manage users");
  withDbOptions(
    user
      .command("add <name>")
      .description("add a user (the password is asked for when --password is absent)")
      .option("--password <password>", "the user's password (at least 8 characters)")
      .option("--json", "print JSON"),
  ).action(
    action(async (name: string, flags: DbFlags & { password?: string }) => {
      const password = flags.password ?? (await readPassword());
      const u = await withAdmin(flags, (ops) => ops.addUser(name, password));
      if (flags.json) printJson(u);
      else process.stdout.write(`added user ${u.name} (${u.id})\n`);
    }),
  );

  withDbOptions(
    user
      .command("delete <name>")
      .description("delete a user and every row of theirs (memories, devices, keys, tokens, jobs, graph)")
      .option("--yes", "do not ask for confirmation")
      .option("--json", "print JSON"),
  ).action(
    action(async (name: string, flags: DbFlags & { yes?: boolean }) => {
      await confirm(`This deletes user ${name} and all of their memories, devices and keys.`, flags.yes);
      const d = await withAdmin(flags, (ops) => ops.deleteUser(name));
      if (flags.json) printJson(d);
      else
        process.stdout.write(
          `deleted user ${d.name} (${d.id}): ${d.memories} memories, ${d.devices} devices\n`,
        );
    }),
  );

  withDbOptions(
    user
      .command("passwd <name>")
      .description("set a user's password (asked for on the terminal, or the first line of stdin)")
      .option("--json", "print JSON"),
  ).action(
    action(async (name: string, flags: DbFlags) => {
      const password = await readPassword();
      const u = await withAdmin(flags, (ops) => ops.setPassword(name, password));
      if (flags.json) printJson(u);
      else process.stdout.write(`set the password of ${u.name}\n`);
    }),
  );

  const key = vps.command("key").description("manage API keys");
  withDbOptions(
    key
      .command("create <user>")
      .description("create an API key (printed once)")
      .option("--json", "print JSON"),
  ).action(
    action(async (userName: string, flags: DbFlags) => {
      const k = await withAdmin(flags, (ops) => ops.createKey(userName));
      if (flags.json) printJson(k);
      else {
        process.stdout.write(`${k.key}\n`);
        process.stderr.write("This key is shown once; store it now (the server keeps only its hash).\n");
      }
    }),
  );

  withDbOptions(
    key
      .command("list <user>")
      .description("list a user's API keys (prefixes only)")
      .option("--json", "print JSON"),
  ).action(
    action(async (userName: string, flags: DbFlags) => {
      const keys = await withAdmin(flags, (ops) => ops.listKeys(userName));
      if (flags.json) printJson(keys);
      else if (keys.length === 0) process.stdout.write("no API keys\n");
      else
        for (const k of keys)
          process.stdout.write(
            `${k.id}\t${k.prefix}…\tcreated ${k.created_at}\tlast used ${k.last_used_at ?? "never"}${
              k.revoked_at ? `\trevoked ${k.revoked_at}` : ""
            }\n`,
          );
    }),
  );

  withDbOptions(
    key
      .command("revoke <key-or-user> [key]")
      .description("revoke an API key, named by its id or prefix (see key list); USER KEY also works")
      .option("--json", "print JSON"),
  ).action(
    action(async (first: string, second: string | undefined, flags: DbFlags) => {
      const [userName, keyId] = second === undefined ? [undefined, first] : [first, second];
      const k = await withAdmin(flags, (ops) => ops.revokeKey(userName, keyId));
      if (flags.json) printJson(k);
      else {
        const ended = k.signed_out_devices;
        process.stdout.write(
          `revoked API key ${k.id} (${k.prefix}…) at ${k.revoked_at}\n${
            ended.length === 0
              ? "no device was signed in with it\n"
              : `signed out ${ended.length} device(s) signed in with it: ${ended.join(", ")} (sign them in again with a new key: dionysus login)\n`
          }`,
        );
      }
    }),
  );

  registerVpsBackup(vps);

  withDbOptions(
    vps.command("devices <user>").description("list a user's devices").option("--json", "print JSON"),
  ).action(
    action(async (userName: string, flags: DbFlags) => {
      const devices = await withAdmin(flags, (ops) => ops.devices(userName));
      if (flags.json) printJson(devices);
      else printDevices(devices);
    }),
  );

  withDbOptions(
    vps
      .command("revoke <device>")
      .description("revoke a device: its tokens stop working at once")
      .option("--user <user>", "the device's user (needed when several users have this device id)")
      .option("--json", "print JSON"),
  ).action(
    action(async (device: string, flags: DbFlags & { user?: string }) => {
      const d = await withAdmin(flags, (ops) => ops.revoke(device, flags.user));
      if (flags.json) printJson(d);
      else process.stdout.write(`revoked ${d.device_id} (user ${d.user_id}) at ${d.revoked_at}\n`);
    }),
  );
}
