import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { openSqliteKeyVault } from '../key-vault/sqlite';
import { scanFiles } from '../testing/scan';
import { PersonalDataCipher } from './personal-data';
import { rotateMasterKey, type RotationState } from './rotation';

describe('master key rotation over the SQLite vault', () => {
  it('resumes after an interruption, sweeps up keys written meanwhile under the old key, and leaves no old wrapping behind', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rotation-'));
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)];
    const before = new PersonalDataCipher(vault, oldKey);
    const keys = new Map<string, Buffer>();
    for (let i = 0; i < 95; i++) keys.set(`t:u${String(i).padStart(3, '0')}`, (await before.keyFor(`t:u${String(i).padStart(3, '0')}`, { create: true }))!.key);
    const oldWrapped = (await vault.list(null, 1000)).map((k) => k.wrapped);
    const during = new PersonalDataCipher(vault, { current: newKey, previous: [oldKey] });
    let saved: RotationState | null = null;
    const state = { load: async () => saved, save: async (s: RotationState) => void (saved = s) };

    const abort = new AbortController();
    let batches = 0;
    await expect(rotateMasterKey({ vault, cipher: during, batchSize: 10, state, signal: abort.signal, afterBatch: async () => void (++batches === 3 && abort.abort()) })).rejects.toThrow(/interrupted/);
    expect(saved).toMatchObject({ cursor: 't:u029', rewrapped: 30, finished: false, pass: 1 });
    // A process still on the old key writes a key behind the cursor, and one is shredded meanwhile.
    keys.set('t:u000a', (await before.keyFor('t:u000a', { create: true }))!.key);
    await vault.destroy('t:u050');
    keys.delete('t:u050');

    const result = await rotateMasterKey({ vault, cipher: during, batchSize: 10, state });
    expect(result).toMatchObject({ complete: true, unreadable: [] });
    // The rest of pass 1, pass 2 finds the key written behind the cursor, pass 3 finds nothing.
    expect(result.passes).toBe(3);
    expect(result.rewrapped).toBe(95 - 1 + 1);
    expect(saved).toMatchObject({ finished: true });
    // A run after the end starts over and finds nothing to do.
    expect(await rotateMasterKey({ vault, cipher: during, batchSize: 10, state })).toMatchObject({ complete: true, rewrapped: 0, passes: 1 });

    const after = new PersonalDataCipher(vault, newKey);
    for (const [id, key] of keys) expect((await after.keyFor(id, { create: false }))!.key.equals(key)).toBe(true);
    expect(await vault.get('t:u050')).toBeNull();
    // The old wrapped forms are gone from every file (secure_delete and the WAL scrub).
    expect(await scanFiles(dir, oldWrapped)).toEqual([]);
    await vault.close();
  });

  it('leaves keys no master key opens as they are, and says which', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rotation-'));
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    await new PersonalDataCipher(vault, randomBytes(32)).keyFor('t:lost', { create: true });
    await new PersonalDataCipher(vault, randomBytes(32)).keyFor('t:fine', { create: true }).catch(() => undefined);
    const cipher = new PersonalDataCipher(vault, randomBytes(32));
    const result = await rotateMasterKey({ vault, cipher, batchSize: 10 });
    expect(result.complete).toBe(false);
    expect(result.unreadable).toEqual(['t:fine', 't:lost']);
    await vault.close();
  });
});
