import { createHash } from 'node:crypto';
import pg from 'pg';
import type { LeaseStore } from './port';

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const DDL_LOCK = 0x6e6f7413;

/**
 * Leases as rows of a PostgreSQL table. One upsert decides: PostgreSQL locks the row and checks
 * the condition against its latest version, so of many instances racing for a free or lapsed
 * lease exactly one writes it (the MongoDB adapter's unique term documents work around FerretDB,
 * which cannot do this). Expiry times come from the callers' clocks, as in the other adapters:
 * instances must keep their clocks within a small fraction of the TTL.
 */
export const openPostgresLeaseStore = async (
  options: Readonly<{ connectionString: string; schema?: string; now?: () => number }>,
): Promise<LeaseStore> => {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid lease schema name: ${schema}`);
  const leases = `"${schema}".leases`;
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2 });
  pool.on('error', () => undefined);
  try {
    // One statement string is one transaction: the lock is held until the table exists.
    const key = createHash('sha256').update(schema).digest().readInt32BE(0);
    await pool.query(
      `SELECT pg_advisory_xact_lock(${DDL_LOCK}, ${key}); CREATE SCHEMA IF NOT EXISTS "${schema}"; ` +
        `CREATE TABLE IF NOT EXISTS ${leases} (name text PRIMARY KEY, holder text NOT NULL, expires_at bigint NOT NULL)`,
    );
  } catch (e) {
    await pool.end();
    throw e;
  }
  const now = options.now ?? Date.now;
  let closed = false;
  return {
    acquire: async (name, holder, ttlMs) => {
      const t = now();
      const r = await pool.query({
        name: 'lease-acquire',
        text: `INSERT INTO ${leases} AS l (name, holder, expires_at) VALUES ($1, $2, $3)
               ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
               WHERE l.holder = excluded.holder OR l.expires_at <= $4`,
        values: [name, holder, t + ttlMs, t],
      });
      return r.rowCount === 1;
    },
    release: async (name, holder) => {
      await pool.query({ name: 'lease-release', text: `DELETE FROM ${leases} WHERE name = $1 AND holder = $2`, values: [name, holder] });
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
};
