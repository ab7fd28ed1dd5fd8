/**
 * `PRAGMA quick_check` reads the whole file: about 2 s for a 250 MB database. The daemon runs
 * it on a worker thread with its own read-only connection, so that it starts answering at once.
 */
import { DionysusError } from "../../../core/errors.ts";

// Inline worker source: a compiled binary has no separate worker file to load.
const WORKER_SOURCE = `
const { Database } = require("bun:sqlite");
self.onmessage = (event) => {
  let db;
  try {
    db = new Database(event.data, { readonly: true });
    db.run("PRAGMA busy_timeout = 5000");
    const row = db.query("PRAGMA quick_check(1)").values()[0];
    postMessage({ ok: row && row[0] === "ok", result: String(row ? row[0] : "no answer") });
  } catch (err) {
    postMessage({ ok: false, result: String((err && err.message) || err) });
  } finally {
    try { db && db.close(); } catch {}
  }
};`;

/** Resolves when `PRAGMA quick_check` passes; rejects with `db_corrupt` when it does not. */
export function checkIntegrityInBackground(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const url = URL.createObjectURL(new Blob([WORKER_SOURCE], { type: "application/javascript" }));
    const worker = new Worker(url);
    const done = () => {
      worker.terminate();
      URL.revokeObjectURL(url);
    };
    worker.onmessage = (event: MessageEvent<{ ok: boolean; result: string }>) => {
      done();
      if (event.data.ok) resolve();
      else
        reject(
          new DionysusError(
            "db_corrupt",
            `${path} is corrupt (quick_check: ${event.data.result}); it was left untouched (move it away to start a fresh database)`,
            { details: { path } },
          ),
        );
    };
    worker.onerror = (event) => {
      done();
      reject(new DionysusError("internal", `the integrity check could not run: ${event.message}`));
    };
    worker.postMessage(path);
  });
}
