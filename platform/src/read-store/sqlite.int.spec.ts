import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readStoreContract } from './contract';
import { openSqliteReadStore } from './sqlite';

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

  it('rejects unsafe collection and field names', async () => {
    const store = openSqliteReadStore({ path: ':memory:' });
    await expect(store.ensureCollections([{ name: 'x; DROP TABLE checkpoints', indexes: [] }])).rejects.toThrow(/invalid collection name/);
    await expect(store.ensureCollections([{ name: 'ok', indexes: [["a') --"]] }])).rejects.toThrow(/invalid field name/);
    await store.close();
  });
});
