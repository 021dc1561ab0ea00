import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scanFiles } from '../testing/scan';
import { keyVaultContract } from './contract';
import { openSqliteKeyVault } from './sqlite';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vault-'));

keyVaultContract('sqlite', async () => {
  const vault = openSqliteKeyVault({ path: path.join(tempDir(), 'keys.db') });
  return { vault, cleanup: () => vault.close() };
});

describe('sqlite key vault', () => {
  it('leaves no byte of a destroyed key in the database, WAL or shared-memory files', async () => {
    const dir = tempDir();
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    const keys = Array.from({ length: 50 }, (_, i) => ({ id: `tenant:user-${i}`, wrapped: randomBytes(61) }));
    for (const k of keys) await vault.putIfAbsent(k.id, k.wrapped);
    // Raw byte search; first a control: keys that exist are found.
    const hex = async (needles: Buffer[]) => {
      const hits: Buffer[] = [];
      for (const file of fs.readdirSync(dir)) {
        const bytes = fs.readFileSync(path.join(dir, file));
        for (const n of needles) if (bytes.includes(n)) hits.push(n);
      }
      return hits;
    };
    expect((await hex(keys.map((k) => k.wrapped))).length).toBeGreaterThanOrEqual(50);
    for (const k of keys.slice(0, 25)) expect(await vault.destroy(k.id)).toBe(true);
    expect(await hex(keys.slice(0, 25).map((k) => k.wrapped))).toEqual([]);
    expect(new Set((await hex(keys.slice(25).map((k) => k.wrapped))).map((b) => b.toString('hex'))).size).toBe(25);
    expect(await vault.destroyMany(keys.slice(25).map((k) => k.id))).toBe(25);
    expect(await hex(keys.map((k) => k.wrapped))).toEqual([]);
    await vault.close();
    expect(await scanFiles(dir, ['tenant:user-1'])).toEqual([]);
  });
});
