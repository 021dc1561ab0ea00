import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { deferCheckpoints, startWalCheckpointer } from './sqlite-checkpointer';

const PAGE = 'x'.repeat(3_000);

/** A writer as the stores open theirs when a checkpointer thread does the checkpoints. */
const openWriter = (file: string) => {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  deferCheckpoints(db);
  db.exec('CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const insert = db.prepare<[string]>('INSERT INTO t (v) VALUES (?)');
  const write = db.transaction((rows: number) => {
    for (let i = 0; i < rows; i++) insert.run(PAGE);
  });
  return { db, write };
};

const size = (file: string): number => (fs.existsSync(file) ? fs.statSync(file).size : 0);

const until = async (what: string, ok: () => boolean, ms = 10_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe('the WAL checkpointer thread', () => {
  it('moves the commits of writers that defer their checkpoints into the database file', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-')), 'a.db');
    const { db, write } = openWriter(file);
    for (let i = 0; i < 100; i++) write(30); // about 12 MB, under the writers' fallback of 64 MB
    // Nothing checkpointed the commits: the file holds the schema only, the WAL everything.
    expect(size(file)).toBeLessThan(64 * 1024);
    expect(size(`${file}-wal`)).toBeGreaterThan(10_000_000);
    const checkpointer = await startWalCheckpointer({ paths: [file], intervalMs: 20 });
    try {
      await until('the file holds the rows', () => size(file) > 10_000_000);
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });

  it('keeps the WAL of a busy writer bounded, the writer never checkpointing itself', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
    const files = [path.join(dir, 'a.db'), path.join(dir, 'b.db')];
    const writers = files.map(openWriter);
    const checkpointer = await startWalCheckpointer({ paths: files, intervalMs: 20 });
    let largestWal = 0;
    try {
      // 72 MB to each file in batches, with the pauses between them a pipeline has.
      for (let i = 0; i < 800; i++) {
        for (const w of writers) w.write(30);
        for (const f of files) largestWal = Math.max(largestWal, size(`${f}-wal`));
        await new Promise((r) => setTimeout(r, 2));
      }
    } finally {
      await checkpointer.stop();
      for (const w of writers) w.db.close();
    }
    for (const f of files) expect(size(f)).toBeGreaterThan(70_000_000);
    // Without the thread the WAL would grow to 64 MB, where the writers' own checkpoints start. The
    // thread restarts it past 16 MB; the margin above that is for a thread starved of a core while
    // other test files run (CI once saw 22 MB at a 20 MB bound).
    expect(largestWal).toBeLessThan(36_000_000);
  });

  it('reports a file it cannot checkpoint and goes on with the others', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-'));
    const good = path.join(dir, 'good.db');
    const bad = path.join(dir, 'bad.db');
    fs.writeFileSync(bad, 'this is not a database file, but the header of one is 100 bytes long at least.........');
    const { db, write } = openWriter(good);
    const errors: string[] = [];
    const checkpointer = await startWalCheckpointer({ paths: [bad, good], intervalMs: 20, onError: (m) => errors.push(m) });
    try {
      write(3_000);
      await until('the good file holds the rows', () => size(good) > 8_000_000);
      await until('the bad file is reported', () => errors.length > 0);
      expect(errors[0]).toMatch(/not a database/);
    } finally {
      await checkpointer.stop();
      db.close();
    }
  });
});
