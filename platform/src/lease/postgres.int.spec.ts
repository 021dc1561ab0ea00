import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { leaseStoreContract } from './contract';
import { openPostgresLeaseStore } from './postgres';

const url = process.env.POSTGRES_URL;
if (!url) console.warn('postgres lease store: skipped, POSTGRES_URL is not set (start servers with npm run servers:up)');
const schema = `lease_${randomBytes(6).toString('hex')}`;

describe.skipIf(!url)('postgres lease store', () => {
  afterAll(async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await client.end();
  });

  leaseStoreContract('postgres, two pools', async () => {
    let t = 1_000_000;
    const now = () => t;
    const [a, b] = await Promise.all([openPostgresLeaseStore({ connectionString: url!, schema, now }), openPostgresLeaseStore({ connectionString: url!, schema, now })]);
    return { a, b, advance: (ms) => void (t += ms), cleanup: async () => void (await Promise.all([a.close(), b.close()])) };
  });

  it('gives a free lease, and a lapsed one, to exactly one of many instances racing for it', async () => {
    let t = 5_000_000;
    const stores = await Promise.all(Array.from({ length: 6 }, () => openPostgresLeaseStore({ connectionString: url!, schema, now: () => t })));
    try {
      for (let round = 0; round < 10; round++) {
        const name = `race-${round}`;
        const first = await Promise.all(stores.map((s, i) => s.acquire(name, `holder-${i}`, 1000)));
        expect(first.filter(Boolean)).toHaveLength(1);
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
