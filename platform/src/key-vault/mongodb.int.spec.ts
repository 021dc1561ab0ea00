import { randomBytes } from 'node:crypto';
import { MongoClient } from 'mongodb';
import { afterAll, describe, expect, it } from 'vitest';
import { keyVaultContract } from './contract';
import { openMongoKeyVault } from './mongodb';

const url = process.env.MONGODB_URL;
if (!url) console.warn('mongodb key vault: skipped, MONGODB_URL is not set (start servers with npm run servers:up)');
const database = `t_${randomBytes(4).toString('hex')}_keyvault`;

describe.skipIf(!url)('mongodb key vault', () => {
  afterAll(async () => {
    const client = await new MongoClient(url!).connect();
    await client.db(database).dropDatabase();
    await client.close();
  });

  keyVaultContract('mongodb', async () => {
    const vault = await openMongoKeyVault({ url: url!, database });
    return { vault, cleanup: () => vault.close() };
  });

  it('lets one of two instances racing to store a key win, and both return the winner', async () => {
    const [a, b] = await Promise.all([openMongoKeyVault({ url: url!, database }), openMongoKeyVault({ url: url!, database })]);
    try {
      for (let i = 0; i < 20; i++) {
        const id = `race-${i}`;
        const [ka, kb] = [randomBytes(40), randomBytes(40)];
        const [ra, rb] = await Promise.all([a.putIfAbsent(id, ka), b.putIfAbsent(id, kb)]);
        expect(ra.equals(rb)).toBe(true);
        expect(ra.equals(ka) || ra.equals(kb)).toBe(true);
        expect((await a.get(id))!.equals(ra)).toBe(true);
      }
      expect(await a.destroyMany(['race-0', 'race-1', 'nope'])).toBe(2);
      expect(await b.get('race-0')).toBeNull();
      expect(await b.get('race-2')).not.toBeNull();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
