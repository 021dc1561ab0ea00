import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { keyVaultContract } from './contract';
import { openPostgresKeyVault } from './postgres';

const url = process.env.POSTGRES_URL;
if (!url) console.warn('postgres key vault: skipped, POSTGRES_URL is not set (start servers with npm run servers:up)');
const schema = `kv_${randomBytes(6).toString('hex')}`;

const admin = async <T>(work: (client: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
};

describe.skipIf(!url)('postgres key vault', () => {
  afterAll(async () => {
    await admin((c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
  });

  keyVaultContract('postgres', async () => {
    const vault = await openPostgresKeyVault({ connectionString: url!, schema });
    return { vault, cleanup: () => vault.close() };
  });

  it('lets one of several instances racing to store a key win, and all return the winner', async () => {
    const vaults = await Promise.all(Array.from({ length: 4 }, () => openPostgresKeyVault({ connectionString: url!, schema, poolSize: 2 })));
    try {
      for (let i = 0; i < 20; i++) {
        const id = `race-${i}`;
        const keys = vaults.map(() => randomBytes(40));
        const stored = await Promise.all(vaults.map((v, j) => v.putIfAbsent(id, keys[j]!)));
        expect(stored.every((k) => k.equals(stored[0]!))).toBe(true);
        expect(keys.some((k) => k.equals(stored[0]!))).toBe(true);
        expect((await vaults[0]!.get(id))!.equals(stored[0]!)).toBe(true);
      }
    } finally {
      await Promise.all(vaults.map((v) => v.close()));
    }
  });

  it('destroys many keys at once, and no live row of its schema holds them afterwards', async () => {
    const vault = await openPostgresKeyVault({ connectionString: url!, schema });
    try {
      const keys = Array.from({ length: 300 }, (_, i) => ({ id: `bulk-${i}`, wrapped: randomBytes(61) }));
      for (const k of keys) await vault.putIfAbsent(k.id, k.wrapped);
      /** Which of the keys any live row of any table of the vault's schema holds, in any column. */
      const held = () =>
        admin(async (c) => {
          const tables = (await c.query<{ t: string }>('SELECT tablename AS t FROM pg_tables WHERE schemaname = $1', [schema])).rows.map((r) => r.t);
          expect(tables).toEqual(['wrapped_keys']);
          const text = (await c.query<{ row: string }>(`SELECT t::text AS row FROM "${schema}".wrapped_keys t`)).rows.map((r) => r.row).join('\n');
          return keys.filter((k) => text.includes(k.wrapped.toString('hex'))).length;
        });
      expect(await held()).toBe(keys.length);
      const [gone, kept] = [keys.slice(0, 250), keys.slice(250)];
      expect(await vault.destroyMany([...gone.map((k) => k.id), 'no-such-key'])).toBe(gone.length);
      expect(await vault.destroyMany([])).toBe(0);
      expect(await held()).toBe(kept.length);
      for (const k of gone.slice(0, 5)) expect(await vault.get(k.id)).toBeNull();
      for (const k of kept) expect((await vault.get(k.id))!.equals(k.wrapped)).toBe(true);
    } finally {
      await vault.close();
    }
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(openPostgresKeyVault({ connectionString: url!, schema: 'x"; DROP TABLE y; --' })).rejects.toThrow(/invalid key vault schema name/);
  });
});
