import Database from 'better-sqlite3';
import type { KeyVault } from './port';

/**
 * Wrapped data keys in their own SQLite file. `secure_delete` zeroes a deleted row's bytes in
 * the database page, and a TRUNCATE checkpoint after each destroy empties the WAL, which would
 * otherwise keep the page as it was before the delete until it is overwritten.
 */
export const openSqliteKeyVault = (options: Readonly<{ path: string }>): KeyVault & { destroyMany(keyIds: readonly string[]): Promise<number> } => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('secure_delete = ON');
  db.exec('CREATE TABLE IF NOT EXISTS data_keys (key_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID');
  const insert = db.prepare('INSERT INTO data_keys (key_id, wrapped) VALUES (?, ?) ON CONFLICT (key_id) DO NOTHING');
  const select = db.prepare<[string], { wrapped: Buffer }>('SELECT wrapped FROM data_keys WHERE key_id = ?');
  const remove = db.prepare('DELETE FROM data_keys WHERE key_id = ?');
  const putIfAbsent = db.transaction((keyId: string, wrapped: Buffer): Buffer => {
    insert.run(keyId, wrapped);
    return select.get(keyId)!.wrapped;
  });
  const removeMany = db.transaction((keyIds: readonly string[]) => keyIds.reduce((n, id) => n + remove.run(id).changes, 0));
  const scrubWal = () => db.pragma('wal_checkpoint(TRUNCATE)');

  return {
    putIfAbsent: async (keyId, wrapped) => putIfAbsent(keyId, wrapped),
    get: async (keyId) => select.get(keyId)?.wrapped ?? null,
    destroy: async (keyId) => {
      const removed = remove.run(keyId).changes > 0;
      if (removed) scrubWal();
      return removed;
    },
    /** Many keys in one transaction and one checkpoint: the bulk path for expiry. */
    destroyMany: async (keyIds) => {
      const removed = removeMany(keyIds);
      if (removed > 0) scrubWal();
      return removed;
    },
    close: async () => {
      db.close();
    },
  };
};
