import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomInt } from 'node:crypto';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { scanFiles } from '../testing/scan';
import { keyVaultContract } from './contract';
import { openSqliteKeyVault } from './sqlite';

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'vault-'));
const shuffled = <T>(xs: readonly T[]): T[] => {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
};

keyVaultContract('sqlite', async () => {
  const vault = openSqliteKeyVault({ path: path.join(tempDir(), 'keys.db') });
  return { vault, cleanup: () => vault.close() };
});

describe('sqlite key vault', () => {
  it('leaves no byte of a destroyed key in the database, WAL or shared-memory files', async () => {
    const dir = tempDir();
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    // Enough keys for a b-tree of several levels, written in random order so pages split.
    const keys = Array.from({ length: 3000 }, (_, i) => ({ id: `tenant:user-${i}`, wrapped: Buffer.concat([Buffer.from([1]), randomBytes(60)]) }));
    for (const k of shuffled(keys)) await vault.putIfAbsent(k.id, k.wrapped);
    const found = async (ks: readonly { wrapped: Buffer }[]) => new Set((await scanFiles(dir, ks.map((k) => k.wrapped))).map((h) => h.needle)).size;
    // The control: keys that exist are found, so an empty scan below means something.
    expect(await found(keys)).toBe(keys.length);
    const order = shuffled(keys);
    const singly = order.slice(0, 1000);
    const bulk = order.slice(1000, 2500);
    const kept = order.slice(2500);
    for (const k of singly) expect(await vault.destroy(k.id)).toBe(true);
    expect(await found(singly)).toBe(0);
    expect(await found(bulk)).toBe(bulk.length);
    expect(await vault.destroyMany(bulk.map((k) => k.id))).toBe(bulk.length);
    expect(await found([...singly, ...bulk])).toBe(0);
    expect(await found(kept)).toBe(kept.length);
    for (const k of kept) expect(Buffer.compare((await vault.get(k.id))!, k.wrapped)).toBe(0);
    await vault.close();
    expect(await found([...singly, ...bulk])).toBe(0);
  });

  it('finds nothing of a destroyed text-valued key, as UTF-8 or UTF-16', async () => {
    const dir = tempDir();
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    const secret = `wrapped-${randomBytes(16).toString('hex')}`;
    await vault.putIfAbsent('t:u', Buffer.from(secret, 'utf8'));
    expect(await scanFiles(dir, [secret])).not.toEqual([]);
    await vault.destroy('t:u');
    expect(await scanFiles(dir, [secret])).toEqual([]);
    await vault.close();
  });

  it('keeps keys across a reopen', async () => {
    const file = path.join(tempDir(), 'keys.db');
    const first = openSqliteKeyVault({ path: file });
    const key = randomBytes(61);
    await first.putIfAbsent('t:u', key);
    await first.close();
    const second = openSqliteKeyVault({ path: file });
    expect(Buffer.compare((await second.get('t:u'))!, key)).toBe(0);
    await second.close();
  });

  it('retries a WAL scrub that failed (a reader held the WAL) until the destroyed key is gone from every file', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'keys.db');
    const events: boolean[] = [];
    const vault = openSqliteKeyVault({ path: file, scrubAttempts: 2, busyTimeoutMs: 50, onScrub: (e) => events.push(e.ok) });
    const keys = Array.from({ length: 50 }, (_, i) => ({ id: `t:u${i}`, wrapped: Buffer.concat([Buffer.from([2]), randomBytes(68)]) }));
    for (const k of keys) await vault.putIfAbsent(k.id, k.wrapped);
    // Everything so far is in the database file; a reader then pins a snapshot of the WAL.
    await vault.destroy('t:u49');
    const reader = new Database(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM wrapped_keys').get();
    const victim = keys[0]!;
    await expect(vault.destroy(victim.id)).rejects.toThrow(/WAL could not be emptied/);
    expect(vault.scrubPending).toBe(true);
    expect(await vault.get(victim.id)).toBeNull();
    // The old page is still in the files while the reader holds the WAL back.
    expect(await scanFiles(dir, [victim.wrapped])).not.toEqual([]);
    reader.exec('COMMIT');
    reader.close();
    // Nobody destroys anything more: the vault tries again by itself.
    const deadline = Date.now() + 10_000;
    while (vault.scrubPending && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(vault.scrubPending).toBe(false);
    expect(events).toEqual([false, true]);
    expect(await scanFiles(dir, [victim.wrapped])).toEqual([]);
    await vault.close();
  });

  it('a later destroy, even of nothing, finishes a pending scrub first', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'keys.db');
    const vault = openSqliteKeyVault({ path: file, scrubAttempts: 1, busyTimeoutMs: 20 });
    const victim = Buffer.concat([Buffer.from([2]), randomBytes(68)]);
    await vault.putIfAbsent('t:v', victim);
    await vault.putIfAbsent('t:w', randomBytes(69));
    await vault.destroy('t:w');
    const reader = new Database(file, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) FROM wrapped_keys').get();
    await expect(vault.destroy('t:v')).rejects.toThrow(/WAL could not be emptied/);
    reader.exec('COMMIT');
    reader.close();
    // The shredder's next run finds the key gone (0 destroyed) and still scrubs.
    expect(await vault.destroyMany(['t:v'])).toBe(0);
    expect(vault.scrubPending).toBe(false);
    expect(await scanFiles(dir, [victim])).toEqual([]);
    await vault.close();
  });
});
