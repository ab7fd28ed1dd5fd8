export { checkIntegrityInBackground } from "./integrity.ts";
export { BUSY_TIMEOUT_MS, openEdgeDatabase } from "./open.ts";
export { APPLICATION_ID, SCHEMA_VERSION } from "./schema.ts";
export { createSqliteStore, type SqliteStoreOptions } from "./sqlite-store.ts";
