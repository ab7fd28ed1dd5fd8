import { hostname } from "node:os";
import type { Command } from "commander";
import { DionysusError } from "../../core/errors.ts";
import { connectEdge, type SyncRun } from "../../edge/client.ts";
import { dbPath } from "../../edge/daemon-file.ts";
import { isLoopbackName } from "../../edge/http/guard.ts";
import { createSqliteStore } from "../../edge/store/sqlite/index.ts";
import { deleteCredentials, readCredentials } from "../../edge/sync/credentials.ts";
import { login, normaliseUrl } from "../../edge/sync/login.ts";
import { edgeConfig } from "../edge-command.ts";
import { action, printJson } from "../output.ts";
import { formatSyncRun, progressPrinter } from "../sync-format.ts";

export function registerLogin(program: Command): void {
  program
    .command("login")
    .description("authenticate this device with a VPS (device code flow, or --api-key), then sync")
    .argument("<url>", "the VPS base URL, e.g. https://memory.example.org")
    .option("--api-key <key>", "use an API key (from `dionysus vps key create`) instead of the browser flow")
    .option("--name <name>", "this device's name on the VPS", hostname())
    .option("--no-sync", "do not run a first sync after logging in")
    .option("--new-device", "sign in under a new device id (after this device was revoked on the VPS)")
    .option("--json", "print the result as JSON")
    .action(
      action(
        async (
          url: string,
          opts: { apiKey?: string; name: string; sync: boolean; newDevice?: boolean; json?: boolean },
          cmd: Command,
        ) => {
          const config = edgeConfig(cmd);
          const target = new URL(normaliseUrl(url));
          if (target.protocol === "http:" && !isLoopbackName(target.hostname))
            process.stderr.write(
              `dionysus: warning: ${target.origin} is plain http:// and not loopback: the API key, tokens and memories cross the network unencrypted; use https://\n`,
            );
          const apiKey = opts.apiKey ?? process.env.DIONYSUS_API_KEY;
          const store = createSqliteStore({ path: dbPath(config.data_dir), integrityCheck: false });
          let result: Awaited<ReturnType<typeof login>>;
          try {
            result = await login({
              vpsUrl: url,
              dataDir: config.data_dir,
              store,
              ...(apiKey ? { apiKey } : {}),
              deviceName: opts.name,
              ...(opts.newDevice ? { newDevice: true } : {}),
              platform: `${process.platform}-${process.arch}`,
              prompt: (auth) => {
                const where = auth.verification_uri_complete ?? auth.verification_uri;
                process.stderr.write(
                  `To sign in, open ${where}\nand enter the code ${auth.user_code} (expires in ${Math.round(auth.expires_in / 60)} min).\nWaiting for approval…\n`,
                );
              },
            });
          } finally {
            store.close();
          }
          let synced: SyncRun | undefined;
          let syncError: string | undefined;
          if (opts.sync) {
            const client = await connectEdge(config);
            const progress = progressPrinter();
            try {
              synced = await client.sync(opts.json ? undefined : progress);
            } catch (err) {
              // The login itself succeeded; the daemon retries the sync on its own.
              syncError = err instanceof Error ? err.message : String(err);
            } finally {
              progress.done();
              client.close();
            }
          }
          const out = {
            vps_url: url,
            user: result.identity.user,
            device_id: result.device_id,
            identity_memories: result.identity.memories.length,
            sync: synced?.report ?? null,
            sync_error: syncError ?? null,
          };
          if (opts.json) return printJson(out);
          const lines = [
            `Logged in to ${url} as ${result.identity.user.name} (device ${result.device_id}).`,
            `Identity baseline: ${out.identity_memories} ${out.identity_memories === 1 ? "memory" : "memories"}.`,
          ];
          if (synced) lines.push(formatSyncRun(synced));
          if (syncError)
            lines.push(`First sync did not finish (${syncError}); it will be retried in the background.`);
          process.stdout.write(`${lines.join("\n")}\n`);
        },
      ),
    );

  program
    .command("logout")
    .description(
      "forget this device's VPS credentials (queued writes are kept and sync after the next login)",
    )
    .option("--json", "print the result as JSON")
    .action(
      action(async (opts: { json?: boolean }, cmd: Command) => {
        const config = edgeConfig(cmd);
        const creds = readCredentials(config.data_dir);
        if (!deleteCredentials(config.data_dir)) throw new DionysusError("not_found", "not logged in");
        if (opts.json) return printJson({ logged_out: true, vps_url: creds?.vps_url ?? null });
        process.stdout.write(
          `Logged out of ${creds?.vps_url ?? "the VPS"}. Local memories and queued writes are kept.\n`,
        );
      }),
    );
}
