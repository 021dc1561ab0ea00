import Database from 'better-sqlite3';
import type { LeaseStore } from './port';

/** Leases in a SQLite table; one UPDATE-or-INSERT decides, so two processes never both win. */
export const openSqliteLeaseStore = (options: Readonly<{ path: string; now?: () => number }>): LeaseStore => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS leases (name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID');
  const now = options.now ?? Date.now;
  const take = db.prepare(
    `INSERT INTO leases (name, holder, expires_at) VALUES (@name, @holder, @expires)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
     WHERE leases.holder = excluded.holder OR leases.expires_at <= @now`,
  );
  const release = db.prepare('DELETE FROM leases WHERE name = ? AND holder = ?');
  return {
    acquire: async (name, holder, ttlMs) => {
      const t = now();
      return take.run({ name, holder, expires: t + ttlMs, now: t }).changes > 0;
    },
    release: async (name, holder) => {
      release.run(name, holder);
    },
    close: async () => {
      db.close();
    },
  };
};
