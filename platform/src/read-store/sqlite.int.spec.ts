import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { readStoreContract } from './contract';
import { openSqliteReadStore } from './sqlite';

/** Another writer on the same file (as another process would be): moves a checkpoint under the write lock. */
const WRITER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
db.exec('BEGIN IMMEDIATE');
db.prepare('UPDATE checkpoints SET position = ? WHERE name = ?').run(workerData.next, workerData.name);
parentPort.postMessage('locked');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.holdMs);
db.exec('COMMIT');
db.close();
`;

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'rs-')), 'read.db');

readStoreContract('sqlite', async () => {
  const store = openSqliteReadStore({ path: tempFile() });
  return { store, cleanup: () => store.close() };
});

describe('sqlite read store', () => {
  it('keeps documents and indexes across a reopen', async () => {
    const file = tempFile();
    const spec = { name: 'things', indexes: [['owner'], ['owner', 'tags']], arrayFields: ['tags'] };
    const first = openSqliteReadStore({ path: file });
    await first.ensureCollections([spec]);
    await first.commit({ checkpoints: [{ name: 'p', expected: null, next: 3 }], changes: [{ op: 'put', collection: 'things', doc: { id: 'a', owner: 'o', tags: ['t'] } }] });
    await first.close();
    const second = openSqliteReadStore({ path: file });
    await second.ensureCollections([spec]);
    expect((await second.find('things', { owner: 'o', tags: 't' }, { limit: 5 })).items).toEqual([{ id: 'a', owner: 'o', tags: ['t'] }]);
    expect(await second.checkpoint('p')).toBe(3);
    await second.close();
  });

  it('serves an idPrefix filter by the ids alone: an index on those fields from an older spec is dropped', async () => {
    const file = tempFile();
    const first = openSqliteReadStore({ path: file });
    await first.ensureCollections([{ name: 'entries', indexes: [['tenantId', 'userId'], ['status']] }]);
    await first.commit({ checkpoints: [], changes: [{ op: 'put', collection: 'entries', doc: { id: 't:u:1', tenantId: 't', userId: 'u', status: 'x' } }] });
    await first.close();
    const indexes = () => new Database(file, { readonly: true }).prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'c_entries' AND name LIKE 'x_%'").all().length;
    expect(indexes()).toBe(2);
    const second = openSqliteReadStore({ path: file });
    await second.ensureCollections([{ name: 'entries', indexes: [['status']], idPrefix: ['tenantId', 'userId'] }]);
    expect(indexes()).toBe(1);
    expect((await second.find('entries', { tenantId: 't', userId: 'u' }, { limit: 5 })).items.map((d) => d.id)).toEqual(['t:u:1']);
    expect((await second.find('entries', { status: 'x' }, { limit: 5 })).items.map((d) => d.id)).toEqual(['t:u:1']);
    await second.close();
  });

  it('rejects unsafe collection and field names', async () => {
    const store = openSqliteReadStore({ path: ':memory:' });
    await expect(store.ensureCollections([{ name: 'x; DROP TABLE checkpoints', indexes: [] }])).rejects.toThrow(/invalid collection name/);
    await expect(store.ensureCollections([{ name: 'ok', indexes: [["a') --"]] }])).rejects.toThrow(/invalid field name/);
    await store.close();
  });

  it('returns getMany in the order asked for, each document once', async () => {
    const store = openSqliteReadStore({ path: ':memory:' });
    await store.ensureCollections([{ name: 'things', indexes: [] }]);
    await store.commit({ checkpoints: [], changes: ['a', 'b', 'c'].map((id) => ({ op: 'put' as const, collection: 'things', doc: { id } })) });
    expect((await store.getMany('things', ['c', 'zz', 'a', 'c', 'b'])).map((d) => d.id)).toEqual(['c', 'a', 'b']);
    expect(await store.getMany('things', [])).toEqual([]);
    await store.close();
  });

  it('applies nothing of a commit when one of its changes fails', async () => {
    const store = openSqliteReadStore({ path: ':memory:' });
    await store.ensureCollections([{ name: 'things', indexes: [] }]);
    await expect(
      store.commit({
        checkpoints: [{ name: 'p', expected: null, next: 1 }],
        changes: [
          { op: 'put', collection: 'things', doc: { id: 'a' } },
          { op: 'put', collection: 'undeclared', doc: { id: 'b' } },
        ],
      }),
    ).rejects.toThrow(/not declared/);
    expect(await store.get('things', 'a')).toBeNull();
    expect(await store.checkpoint('p')).toBeNull();
    await store.close();
  });

  it('checks checkpoints under the write lock, even against a writer on another connection', async () => {
    const file = tempFile();
    const store = openSqliteReadStore({ path: file });
    await store.ensureCollections([{ name: 'things', indexes: [] }]);
    await store.commit({ checkpoints: [{ name: 'p', expected: null, next: 1 }], changes: [] });
    const worker = new Worker(WRITER, { eval: true, workerData: { driver: require.resolve('better-sqlite3'), file, name: 'p', next: 2, holdMs: 300 } });
    const exited = new Promise((resolve, reject) => worker.on('exit', resolve).on('error', reject));
    await new Promise((resolve) => worker.once('message', resolve));
    const stale = store.commit({ checkpoints: [{ name: 'p', expected: 1, next: 3 }], changes: [{ op: 'put', collection: 'things', doc: { id: 'a' } }] });
    await expect(stale).rejects.toMatchObject({ name: 'CheckpointConflictError', expected: 1, actual: 2 });
    await exited;
    expect(await store.get('things', 'a')).toBeNull();
    await store.close();
  });

  it('moves the documents of a file that kept them by id (WITHOUT ROWID) to a rowid table, indexes and array fields included', async () => {
    const file = tempFile();
    const spec = { name: 'things', indexes: [['owner'], ['owner', 'tags']], arrayFields: ['tags'] };
    const first = openSqliteReadStore({ path: file });
    await first.ensureCollections([spec]);
    await first.commit({ checkpoints: [], changes: ['b', 'a'].map((id) => ({ op: 'put' as const, collection: 'things', doc: { id, owner: 'o', tags: ['t', id] } })) });
    await first.close();
    // The table as earlier versions made it; the array field's side table stays as it is.
    const raw = new Database(file);
    raw.exec(`
      ALTER TABLE c_things RENAME TO tmp;
      CREATE TABLE c_things (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
      ALTER TABLE c_things ADD COLUMN f_owner GENERATED ALWAYS AS (json_extract(doc, '$.owner')) VIRTUAL;
      INSERT INTO c_things (id, doc) SELECT id, doc FROM tmp;
      DROP TABLE tmp;
    `);
    raw.close();

    const second = openSqliteReadStore({ path: file });
    await second.ensureCollections([spec]);
    expect((await second.find('things', { owner: 'o' }, { limit: 5 })).items.map((d) => d.id)).toEqual(['a', 'b']);
    expect((await second.find('things', { owner: 'o', tags: 'b' }, { limit: 5 })).items).toEqual([{ id: 'b', owner: 'o', tags: ['t', 'b'] }]);
    await second.commit({ checkpoints: [], changes: [{ op: 'put', collection: 'things', doc: { id: 'a', owner: 'p', tags: [] } }] });
    expect((await second.find('things', { owner: 'o' }, { limit: 5 })).items.map((d) => d.id)).toEqual(['b']);
    await second.close();
    const after = new Database(file, { readonly: true });
    expect(after.prepare<[], { sql: string }>("SELECT sql FROM sqlite_master WHERE name = 'c_things'").get()!.sql).not.toMatch(/WITHOUT ROWID/);
    expect(after.prepare("SELECT name FROM sqlite_master WHERE name = 'c_things_old'").all()).toEqual([]);
    after.close();
  });

  it('drops the indexes and side tables of the earlier naming scheme', async () => {
    const file = tempFile();
    const raw = new Database(file);
    raw.exec(`
      CREATE TABLE c_things (id TEXT PRIMARY KEY, doc TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE m_things_1 (v0, v1, id TEXT NOT NULL, PRIMARY KEY (v0, v1, id)) WITHOUT ROWID;
      CREATE INDEX i_things_0 ON c_things (id);
      CREATE INDEX i_things_0_rank ON c_things (id);
      CREATE TABLE m_things_2_x (id);
    `);
    raw.close();
    const store = openSqliteReadStore({ path: file });
    await store.ensureCollections([{ name: 'things', indexes: [['owner'], ['owner', 'tags']], arrayFields: ['tags'] }]);
    await store.close();
    const check = new Database(file, { readonly: true });
    const names = check.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE name LIKE 'm\\_%' ESCAPE '\\' OR name LIKE 'i\\_%' ESCAPE '\\'").all().map((r) => r.name);
    check.close();
    expect(names).toEqual(['m_things_2_x']);
  });
});
