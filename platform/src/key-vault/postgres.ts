import { createHash } from 'node:crypto';
import pg from 'pg';
import type { KeyVault } from './port';

const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const DDL_LOCK = 0x6e6f7412;
const schemaKey = (schema: string) => createHash('sha256').update(schema).digest().readInt32BE(0);

export type PostgresKeyVault = KeyVault & {
  /** Many keys in one statement: the bulk path for expiry. Returns how many existed. */
  destroyMany(keyIds: readonly string[]): Promise<number>;
};

/**
 * Wrapped data keys in a PostgreSQL schema of their own, apart from the read models' (its own
 * grants and backups; give it its own database where that is wanted). Destroying a key deletes
 * its row, so no live row holds it; the dead tuple stays in the table's pages (and the WAL) until
 * VACUUM frees it and later writes reuse the space, so production relies on encryption at rest,
 * as with MongoDB: without the storage key, a deleted row is gone. Only `key_id` is indexed: the
 * wrapped bytes are in the heap alone.
 */
export const openPostgresKeyVault = async (options: Readonly<{ connectionString: string; schema: string; poolSize?: number }>): Promise<PostgresKeyVault> => {
  if (!SCHEMA_NAME.test(options.schema)) throw new Error(`invalid key vault schema name: ${options.schema}`);
  const keys = `"${options.schema}".wrapped_keys`;
  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 4 });
  pool.on('error', () => undefined);
  try {
    // One statement string runs as one transaction, holding the lock to its end: processes
    // starting together take turns (CREATE ... IF NOT EXISTS is not atomic against the catalog).
    await pool.query(
      `SELECT pg_advisory_xact_lock(${DDL_LOCK}, ${schemaKey(options.schema)}); CREATE SCHEMA IF NOT EXISTS "${options.schema}"; ` +
        `CREATE TABLE IF NOT EXISTS ${keys} (key_id text PRIMARY KEY, wrapped bytea NOT NULL); ` +
        // Key ids in byte order, for paging through every key (a rotation); ids only, not the keys.
        `CREATE INDEX IF NOT EXISTS wrapped_keys_id_c ON ${keys} (key_id COLLATE "C")`,
    );
  } catch (e) {
    await pool.end();
    throw e;
  }
  let closed = false;
  const ensureOpen = () => {
    if (closed) throw new Error('key vault is closed');
  };
  const read = async (keyId: string): Promise<Buffer | null> =>
    (await pool.query<{ wrapped: Buffer }>({ name: 'kv-get', text: `SELECT wrapped FROM ${keys} WHERE key_id = $1`, values: [keyId] })).rows[0]?.wrapped ?? null;

  return {
    putIfAbsent: async (keyId, wrapped) => {
      ensureOpen();
      if (!Buffer.isBuffer(wrapped) || wrapped.length === 0) throw new Error(`wrapped key for ${keyId} must be a non-empty Buffer`);
      const inserted = await pool.query({
        name: 'kv-put',
        text: `INSERT INTO ${keys} (key_id, wrapped) VALUES ($1, $2) ON CONFLICT (key_id) DO NOTHING`,
        values: [keyId, wrapped],
      });
      if (inserted.rowCount === 1) return wrapped;
      // Another writer stored one first (and committed: the insert waited for it); a new
      // statement sees it.
      const existing = await read(keyId);
      if (!existing) throw new Error(`key ${keyId} was stored and destroyed while this one was being stored`);
      return existing;
    },
    get: async (keyId) => {
      ensureOpen();
      return read(keyId);
    },
    getMany: async (keyIds) => {
      ensureOpen();
      if (keyIds.length === 0) return new Map();
      const r = await pool.query<{ key_id: string; wrapped: Buffer }>({ name: 'kv-get-many', text: `SELECT key_id, wrapped FROM ${keys} WHERE key_id = ANY($1::text[])`, values: [[...keyIds]] });
      return new Map(r.rows.map((row) => [row.key_id, row.wrapped]));
    },
    destroy: async (keyId) => {
      ensureOpen();
      return ((await pool.query({ name: 'kv-destroy', text: `DELETE FROM ${keys} WHERE key_id = $1`, values: [keyId] })).rowCount ?? 0) > 0;
    },
    destroyMany: async (keyIds) => {
      ensureOpen();
      if (keyIds.length === 0) return 0;
      return (await pool.query({ name: 'kv-destroy-many', text: `DELETE FROM ${keys} WHERE key_id = ANY($1::text[])`, values: [[...keyIds]] })).rowCount ?? 0;
    },
    list: async (after, limit) => {
      ensureOpen();
      // COLLATE "C": key id order by bytes, the same order whatever the database's collation.
      const r = await pool.query<{ key_id: string; wrapped: Buffer }>({
        name: 'kv-list',
        text: `SELECT key_id, wrapped FROM ${keys} WHERE $1::text IS NULL OR key_id COLLATE "C" > $1::text ORDER BY key_id COLLATE "C" LIMIT $2`,
        values: [after, limit],
      });
      return r.rows.map((row) => ({ keyId: row.key_id, wrapped: row.wrapped }));
    },
    count: async () => {
      ensureOpen();
      return Number((await pool.query<{ n: string }>({ name: 'kv-count', text: `SELECT count(*)::text AS n FROM ${keys}` })).rows[0]!.n);
    },
    replaceMany: async (replacements) => {
      ensureOpen();
      if (replacements.length === 0) return 0;
      // One statement, compare and set per row: a key destroyed meanwhile has no row to update.
      const r = await pool.query({
        name: 'kv-replace-many',
        text: `UPDATE ${keys} k SET wrapped = v.wrapped FROM unnest($1::text[], $2::bytea[], $3::bytea[]) AS v(key_id, expected, wrapped) WHERE k.key_id = v.key_id AND k.wrapped = v.expected`,
        values: [replacements.map((x) => x.keyId), replacements.map((x) => x.expected), replacements.map((x) => x.wrapped)],
      });
      return r.rowCount ?? 0;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await pool.end();
    },
  };
};
