import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { leaseStoreContract } from './contract';
import { openMongoLeaseStore } from './mongodb';

const url = process.env.MONGODB_URL;
if (!url) console.warn('mongodb lease store: skipped, MONGODB_URL is not set (start servers with npm run servers:up)');
const database = `t_${randomBytes(4).toString('hex')}`;

describe.skipIf(!url)('mongodb lease store', () => {
  afterAll(async () => {
    const client = await new MongoClient(url!).connect();
    await client.db(database).dropDatabase();
    await client.close();
  });

  leaseStoreContract('mongodb, two clients', async () => {
    let t = 1_000_000;
    const now = () => t;
    const a = await openMongoLeaseStore({ url: url!, database, now });
    const b = await openMongoLeaseStore({ url: url!, database, now });
    return { a, b, advance: (ms) => void (t += ms), cleanup: async () => void (await Promise.all([a.close(), b.close()])) };
  });

  it('gives a free lease to exactly one of many instances racing for it', async () => {
    const stores = await Promise.all(Array.from({ length: 6 }, () => openMongoLeaseStore({ url: url!, database })));
    try {
      for (let round = 0; round < 10; round++) {
        const name = `race-${round}`;
        const won = await Promise.all(stores.map((s, i) => s.acquire(name, `holder-${i}`, 60_000)));
        expect(won.filter(Boolean)).toHaveLength(1);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('lets exactly one of many instances take over a lapsed lease', async () => {
    let t = 5_000_000;
    const stores = await Promise.all(Array.from({ length: 6 }, () => openMongoLeaseStore({ url: url!, database, now: () => t })));
    try {
      for (let round = 0; round < 10; round++) {
        const name = `lapsed-${round}`;
        expect(await stores[0]!.acquire(name, 'first', 1000)).toBe(true);
        t += 1001;
        const won = await Promise.all(stores.map((s, i) => s.acquire(name, `holder-${i}`, 1000)));
        expect(won.filter(Boolean)).toHaveLength(1);
        const winner = won.indexOf(true);
        expect(await stores[1]!.acquire(name, `holder-${winner}`, 1000)).toBe(true);
        await stores[2]!.release(name, `holder-${winner}`);
        expect(await stores[3]!.acquire(name, 'after-release', 1000)).toBe(true);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
