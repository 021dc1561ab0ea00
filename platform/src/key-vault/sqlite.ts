import Database from 'better-sqlite3';
import type { KeyReplacement, KeyVault, WrappedKey } from './port';

export type SqliteKeyVault = KeyVault & {
  /** Many keys in one transaction and one WAL scrub: the bulk path for expiry. Returns how many existed. */
  destroyMany(keyIds: readonly string[]): Promise<number>;
  /** Whether a WAL scrub failed and has not yet been redone. */
  readonly scrubPending: boolean;
};

const SCRUB_ATTEMPTS = 50;
const SCRUB_RETRY_MS = 20;
/** After a scrub that could not finish, it is tried again in the background, backing off to this. */
const SCRUB_BACKOFF_MAX_MS = 30_000;

export type SqliteKeyVaultOptions = Readonly<{
  path: string;
  /** Told when a scrub fails and when a retried one succeeds (logs). */
  onScrub?: (event: Readonly<{ ok: boolean; error?: unknown; pending: boolean }>) => void;
  /** Tests: how many checkpoints one scrub tries before it reports failure. */
  scrubAttempts?: number;
  /** How long a statement (and a checkpoint waiting for readers) waits for a lock (5 s). */
  busyTimeoutMs?: number;
}>;

/**
 * Wrapped data keys in their own SQLite file. `secure_delete` zeroes a deleted row's bytes in
 * its page (and whole pages when they are freed); the WAL would still hold the page as it was
 * before the delete until that frame is overwritten, so every destroy ends with a TRUNCATE
 * checkpoint, which copies the zeroed page into the database and empties the WAL.
 */
export const openSqliteKeyVault = (options: SqliteKeyVaultOptions): SqliteKeyVault => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
  db.pragma('secure_delete = ON');
  // A rowid table on purpose: in a WITHOUT ROWID table the b-tree's interior pages hold whole
  // records as dividers, so a deleted key's bytes could outlive its row in an interior page. Here
  // interior pages hold rowids only, and the unique index holds key ids, which are not secret.
  db.exec('CREATE TABLE IF NOT EXISTS wrapped_keys (id INTEGER PRIMARY KEY, key_id TEXT NOT NULL UNIQUE, wrapped BLOB NOT NULL)');
  const insert = db.prepare<[string, Buffer]>('INSERT INTO wrapped_keys (key_id, wrapped) VALUES (?, ?) ON CONFLICT (key_id) DO NOTHING');
  const select = db.prepare<[string], { wrapped: Buffer }>('SELECT wrapped FROM wrapped_keys WHERE key_id = ?');
  const remove = db.prepare<[string]>('DELETE FROM wrapped_keys WHERE key_id = ?');
  const selectMany = db.prepare<[string], { key_id: string; wrapped: Buffer }>('SELECT key_id, wrapped FROM wrapped_keys WHERE key_id IN (SELECT value FROM json_each(?))');
  const putIfAbsent = db.transaction((keyId: string, wrapped: Buffer): Buffer => {
    insert.run(keyId, wrapped);
    return select.get(keyId)!.wrapped;
  });
  const removeMany = db.transaction((keyIds: readonly string[]) => keyIds.reduce((n, id) => n + remove.run(id).changes, 0));
  const listFrom = db.prepare<[string, number], { key_id: string; wrapped: Buffer }>('SELECT key_id, wrapped FROM wrapped_keys WHERE key_id > ? ORDER BY key_id LIMIT ?');
  const listFirst = db.prepare<[number], { key_id: string; wrapped: Buffer }>('SELECT key_id, wrapped FROM wrapped_keys ORDER BY key_id LIMIT ?');
  const countStmt = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM wrapped_keys');
  const replace = db.prepare<[Buffer, string, Buffer]>('UPDATE wrapped_keys SET wrapped = ? WHERE key_id = ? AND wrapped = ?');
  const replaceAll = db.transaction((rs: readonly KeyReplacement[]) => rs.reduce((n, r) => n + replace.run(r.wrapped, r.keyId, r.expected).changes, 0));
  let closed = false;
  /** A scrub failed: the WAL may still hold a destroyed key's page until one succeeds. */
  let scrubPending = false;
  let scrubTimer: NodeJS.Timeout | null = null;
  let scrubFailures = 0;

  const checkpoint = (): boolean => {
    const [result] = db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number; log: number; checkpointed: number }[];
    return result !== undefined && result.busy === 0;
  };

  /** Retries a failed scrub in the background until one succeeds (the destroy's caller has moved on). */
  const scheduleScrub = (): void => {
    if (scrubTimer || closed) return;
    const waitMs = Math.min(SCRUB_BACKOFF_MAX_MS, 100 * 2 ** Math.min(scrubFailures, 9));
    scrubTimer = setTimeout(() => {
      scrubTimer = null;
      if (closed || !scrubPending) return;
      if (checkpoint()) {
        scrubPending = false;
        scrubFailures = 0;
        options.onScrub?.({ ok: true, pending: false });
      } else {
        scrubFailures++;
        scheduleScrub();
      }
    }, waitMs);
    scrubTimer.unref();
  };

  /**
   * A reader of another connection can hold the WAL back for a moment: wait for it, a little.
   * If it still cannot be emptied, the scrub stays pending: every later destroy (even of nothing)
   * and a background timer try again until one succeeds, so a failure is never forgotten.
   */
  const scrubWal = async (): Promise<void> => {
    scrubPending = true;
    const attempts = options.scrubAttempts ?? SCRUB_ATTEMPTS;
    for (let attempt = 1; ; attempt++) {
      if (checkpoint()) {
        scrubPending = false;
        scrubFailures = 0;
        if (scrubTimer) clearTimeout(scrubTimer);
        scrubTimer = null;
        return;
      }
      if (attempt >= attempts) {
        scrubFailures++;
        const error = new Error('key destroyed, but the WAL could not be emptied (another connection is reading): its old copy stays until a later checkpoint, which is retried');
        options.onScrub?.({ ok: false, error, pending: true });
        scheduleScrub();
        throw error;
      }
      await new Promise((r) => setTimeout(r, SCRUB_RETRY_MS));
    }
  };

  const ensureOpen = () => {
    if (closed) throw new Error('key vault is closed');
  };

  return {
    get scrubPending() {
      return scrubPending;
    },
    putIfAbsent: async (keyId, wrapped) => {
      ensureOpen();
      if (!Buffer.isBuffer(wrapped) || wrapped.length === 0) throw new Error(`wrapped key for ${keyId} must be a non-empty Buffer`);
      return putIfAbsent.immediate(keyId, wrapped);
    },
    get: async (keyId) => {
      ensureOpen();
      return select.get(keyId)?.wrapped ?? null;
    },
    getMany: async (keyIds) => {
      ensureOpen();
      if (keyIds.length === 0) return new Map();
      return new Map(selectMany.all(JSON.stringify(keyIds)).map((r) => [r.key_id, r.wrapped]));
    },
    destroy: async (keyId) => {
      ensureOpen();
      const removed = remove.run(keyId).changes > 0;
      if (removed || scrubPending) await scrubWal();
      return removed;
    },
    destroyMany: async (keyIds) => {
      ensureOpen();
      const removed = removeMany.immediate(keyIds);
      if (removed > 0 || scrubPending) await scrubWal();
      return removed;
    },
    list: async (after, limit) => {
      ensureOpen();
      const rows = after === null ? listFirst.all(limit) : listFrom.all(after, limit);
      return rows.map((r): WrappedKey => ({ keyId: r.key_id, wrapped: r.wrapped }));
    },
    count: async () => {
      ensureOpen();
      return countStmt.get()!.n;
    },
    replaceMany: async (replacements) => {
      ensureOpen();
      if (replacements.length === 0) return 0;
      const replaced = replaceAll.immediate(replacements);
      // The old wrapped forms leave the WAL too (secure_delete zeroes them in the database).
      if (replaced > 0) await scrubWal().catch(() => undefined);
      return replaced;
    },
    close: async () => {
      if (closed) return;
      closed = true;
      if (scrubTimer) clearTimeout(scrubTimer);
      scrubTimer = null;
      // A last try: closing the last connection checkpoints the WAL too.
      if (scrubPending) checkpoint();
      db.close();
    },
  };
};
