import Database from 'better-sqlite3';
import type { KeyVault } from './port';

export type SqliteKeyVault = KeyVault & {
  /** Many keys in one transaction and one WAL scrub: the bulk path for expiry. Returns how many existed. */
  destroyMany(keyIds: readonly string[]): Promise<number>;
};

const SCRUB_ATTEMPTS = 50;
const SCRUB_RETRY_MS = 20;

/**
 * Wrapped data keys in their own SQLite file. `secure_delete` zeroes a deleted row's bytes in
 * its page (and whole pages when they are freed); the WAL would still hold the page as it was
 * before the delete until that frame is overwritten, so every destroy ends with a TRUNCATE
 * checkpoint, which copies the zeroed page into the database and empties the WAL.
 */
export const openSqliteKeyVault = (options: Readonly<{ path: string }>): SqliteKeyVault => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.pragma('secure_delete = ON');
  // A rowid table on purpose: in a WITHOUT ROWID table the b-tree's interior pages hold whole
  // records as dividers, so a deleted key's bytes could outlive its row in an interior page. Here
  // interior pages hold rowids only, and the unique index holds key ids, which are not secret.
  db.exec('CREATE TABLE IF NOT EXISTS wrapped_keys (id INTEGER PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, wrapped BLOB NOT NULL)');
  const insert = db.prepare<[string, Buffer]>('INSERT INTO wrapped_keys (key_id, wrapped) VALUES (?, ?) ON CONFLICT (key_id) DO NOTHING');
  const select = db.prepare<[string], { wrapped: Buffer }>('SELECT wrapped FROM wrapped_keys WHERE key_id = ?');
  const remove = db.prepare<[string]>('DELETE FROM wrapped_keys WHERE key_id = ?');
  const putIfAbsent = db.transaction((keyId: string, wrapped: Buffer): Buffer => {
    insert.run(keyId, wrapped);
    return select.get(keyId)!.wrapped;
  });
  const removeMany = db.transaction((keyIds: readonly string[]) => keyIds.reduce((n, id) => n + remove.run(id).changes, 0));
  let closed = false;

  /** A reader of another connection can hold the WAL back for a moment: wait for it, a little. */
  const scrubWal = async (): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
      if (result && result.busy === 0) return;
      if (attempt === SCRUB_ATTEMPTS) {
        throw new Error('key destroyed, but the WAL could not be emptied (another connection is reading): its old copy stays until a later checkpoint');
      }
      await new Promise((r) => setTimeout(r, SCRUB_RETRY_MS));
    }
  };

  const ensureOpen = () => {
    if (closed) throw new Error('key vault is closed');
  };

  return {
    putIfAbsent: async (keyId, wrapped) => {
      ensureOpen();
      if (!Buffer.isBuffer(wrapped) || wrapped.length === 0) throw new Error(`wrapped key for ${keyId} must be a non-empty Buffer`);
      return putIfAbsent.immediate(keyId, wrapped);
    },
    get: async (keyId) => {
      ensureOpen();
      return select.get(keyId)?.wrapped ?? null;
    },
    destroy: async (keyId) => {
      ensureOpen();
      const removed = remove.run(keyId).changes > 0;
      if (removed) await scrubWal();
      return removed;
    },
    destroyMany: async (keyIds) => {
      ensureOpen();
      const removed = removeMany.immediate(keyIds);
      if (removed > 0) await scrubWal();
      return removed;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
};
