/**
 * "No write applied twice", checked where it would happen: a trigger on the VPS's `memories`
 * table records every version a write stores (the row's id and stamp, on each insert and each
 * update that sets `hlc`). The job worker's own updates (an embedding moves only `seq`) are not
 * recorded, so the check does not depend on when the worker runs. A version stored twice, the
 * mark of a mutation applied twice, shows up as the same (id, hlc) recorded more than once.
 */
import { Client } from "pg";

/** Installs the audit table and triggers on the VPS database at `url` (after its migrations ran). */
export async function installWriteAudit(url: string): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`
      create table if not exists test_write_audit (memory_id text not null, hlc text not null, at timestamptz not null default clock_timestamp());
      create or replace function test_write_audit_row() returns trigger language plpgsql as $$
      begin
        insert into test_write_audit (memory_id, hlc) values (new.id, new.hlc);
        return null;
      end $$;
      drop trigger if exists test_write_audit_ins on memories;
      drop trigger if exists test_write_audit_upd on memories;
      create trigger test_write_audit_ins after insert on memories for each row execute function test_write_audit_row();
      create trigger test_write_audit_upd after update of hlc on memories for each row execute function test_write_audit_row();
    `);
  } finally {
    await c.end();
  }
}

export interface AuditSummary {
  /** Versions stored, in all. */
  stored: number;
  /** (memory id, stamp) pairs stored more than once: writes applied twice. */
  twice: { memory_id: string; hlc: string; n: number }[];
}

/** What the audit recorded, for the given memories (all when `ids` is undefined). */
export async function readWriteAudit(url: string, ids?: string[]): Promise<AuditSummary> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    const where = ids ? "where memory_id = any($1::text[])" : "";
    const params = ids ? [ids] : [];
    const stored = await c.query<{ n: string }>(
      `select count(*) as n from test_write_audit ${where}`,
      params,
    );
    const twice = await c.query<{ memory_id: string; hlc: string; n: string }>(
      `select memory_id, hlc, count(*) as n from test_write_audit ${where} group by 1, 2 having count(*) > 1`,
      params,
    );
    return {
      stored: Number(stored.rows[0]!.n),
      twice: twice.rows.map((r) => ({ ...r, n: Number(r.n) })),
    };
  } finally {
    await c.end();
  }
}
