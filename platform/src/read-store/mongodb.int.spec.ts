import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { readStoreContract } from './contract';
import { openMongoReadStore, type MongoReadStoreOptions } from './mongodb';
import { CheckpointConflictError, type CollectionSpec, type Doc } from './port';

const url = process.env.MONGODB_URL;
if (!url) console.warn('mongodb read store: skipped, MONGODB_URL is not set (start servers with npm run servers:up)');
const database = `t_${randomBytes(4).toString('hex')}`;
const spec: CollectionSpec = { name: 'items', indexes: [[], ['tenantId']] };
const doc = (id: string, n: number): Doc => ({ id, tenantId: 't', n, text: '한글' });
const open = async (extra: Partial<MongoReadStoreOptions> = {}) => {
  const store = await openMongoReadStore({ url: url!, database, ...extra });
  await store.ensureCollections([spec]);
  return store;
};

describe.skipIf(!url)('mongodb read store', () => {
  afterAll(async () => {
    const client = await new MongoClient(url!).connect();
    await client.db(database).dropDatabase();
    await client.close();
  });

  readStoreContract('mongodb', async () => {
    const store = await openMongoReadStore({ url: url!, database });
    return { store, cleanup: () => store.close() };
  });

  it('rolls a commit that crashed after its marker forward: changes visible, checkpoint moved', async () => {
    const name = `cp-${randomBytes(3).toString('hex')}`;
    const crashing = await open({ failAfter: 'marker' });
    await expect(
      crashing.commit({ checkpoints: [{ name, expected: null, next: 7 }], changes: [{ op: 'put', collection: 'items', doc: doc('f1', 1) }, { op: 'put', collection: 'items', doc: doc('f2', 2) }] }),
    ).rejects.toThrow(/failpoint/);
    await crashing.close();
    // Nothing applied yet: the marker is the only trace.
    const peek = await open({ staleAfterMs: 60_000 });
    expect(await peek.get('items', 'f1')).toBeNull();
    await peek.close();
    const restarted = await open({ staleAfterMs: 0 });
    expect(await restarted.get('items', 'f1')).toEqual(doc('f1', 1));
    expect(await restarted.get('items', 'f2')).toEqual(doc('f2', 2));
    expect(await restarted.checkpoint(name)).toBe(7);
    await restarted.commit({ checkpoints: [{ name, expected: 7, next: 8 }], changes: [] });
    expect(await restarted.checkpoint(name)).toBe(8);
    await restarted.close();
  });

  it('rolls a commit that crashed before its marker back: nothing visible, the old expectation still holds', async () => {
    const name = `cp-${randomBytes(3).toString('hex')}`;
    const setup = await open();
    await setup.commit({ checkpoints: [{ name, expected: null, next: 3 }], changes: [{ op: 'put', collection: 'items', doc: doc('g1', 1) }] });
    await setup.close();
    const crashing = await open({ failAfter: 'journal' });
    await expect(
      crashing.commit({ checkpoints: [{ name, expected: 3, next: 4 }], changes: [{ op: 'put', collection: 'items', doc: doc('g2', 2) }, { op: 'delete', collection: 'items', id: 'g1' }] }),
    ).rejects.toThrow(/failpoint/);
    await crashing.close();
    const restarted = await open({ staleAfterMs: 0 });
    expect(await restarted.checkpoint(name)).toBe(3);
    expect(await restarted.get('items', 'g2')).toBeNull();
    expect(await restarted.get('items', 'g1')).toEqual(doc('g1', 1));
    await restarted.commit({ checkpoints: [{ name, expected: 3, next: 4 }], changes: [{ op: 'put', collection: 'items', doc: doc('g2', 2) }] });
    expect(await restarted.checkpoint(name)).toBe(4);
    expect(await restarted.get('items', 'g2')).toEqual(doc('g2', 2));
    await restarted.close();
  });

  it('finishes a commit that crashed half applied when a reader meets its checkpoint', async () => {
    const name = `cp-${randomBytes(3).toString('hex')}`;
    const crashing = await open({ failAfter: 'apply' });
    await expect(crashing.commit({ checkpoints: [{ name, expected: null, next: 1 }], changes: [{ op: 'put', collection: 'items', doc: doc('h1', 1) }, { op: 'delete', collection: 'items', id: 'none' }] })).rejects.toThrow(
      /failpoint/,
    );
    await crashing.close();
    const reader = await open({ staleAfterMs: 0 });
    expect(await reader.checkpoint(name)).toBe(1);
    await expect(reader.commit({ checkpoints: [{ name, expected: null, next: 2 }], changes: [] })).rejects.toBeInstanceOf(CheckpointConflictError);
    await reader.close();
  });

  it('lets exactly one of two instances committing from the same checkpoint win, and keeps its changes only', async () => {
    const [a, b] = await Promise.all([open(), open()]);
    try {
      for (let round = 0; round < 10; round++) {
        const name = `race-${round}-${randomBytes(3).toString('hex')}`;
        await a.commit({ checkpoints: [{ name, expected: null, next: 0 }], changes: [] });
        const results = await Promise.allSettled([
          a.commit({ checkpoints: [{ name, expected: 0, next: 1 }], changes: [{ op: 'put', collection: 'items', doc: doc(`${name}-a`, 1) }, { op: 'put', collection: 'items', doc: doc(`${name}-x`, 1) }] }),
          b.commit({ checkpoints: [{ name, expected: 0, next: 2 }], changes: [{ op: 'put', collection: 'items', doc: doc(`${name}-b`, 2) }, { op: 'put', collection: 'items', doc: doc(`${name}-x`, 2) }] }),
        ]);
        const won = results.findIndex((r) => r.status === 'fulfilled');
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const lost = results[1 - won] as PromiseRejectedResult;
        expect(lost.reason).toBeInstanceOf(CheckpointConflictError);
        expect(await a.checkpoint(name)).toBe(won + 1);
        expect(((await a.get('items', `${name}-x`)) as unknown as { n: number }).n).toBe(won + 1);
        expect(await a.get('items', `${name}-${won === 0 ? 'b' : 'a'}`)).toBeNull();
      }
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('applies puts and deletes of one batch in order, a delete by filter included', async () => {
    const s = await open();
    await s.commit({
      checkpoints: [],
      changes: [
        { op: 'put', collection: 'items', doc: doc('o1', 1) },
        { op: 'delete', collection: 'items', id: 'o1' },
        { op: 'put', collection: 'items', doc: doc('o2', 1) },
        { op: 'put', collection: 'items', doc: doc('o2', 2) },
        { op: 'deleteWhere', collection: 'items', filter: { tenantId: 't' } },
        { op: 'put', collection: 'items', doc: doc('o3', 3) },
      ],
    });
    expect(await s.get('items', 'o1')).toBeNull();
    expect(await s.get('items', 'o2')).toBeNull();
    expect(await s.get('items', 'o3')).toEqual(doc('o3', 3));
    await s.close();
  });
});
