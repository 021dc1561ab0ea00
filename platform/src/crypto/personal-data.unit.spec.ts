import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Sealed } from '../../../schema/src/events';
import type { KeyVault } from '../key-vault/port';
import { parseMasterKey, PersonalDataCipher } from './personal-data';

const memoryVault = (): KeyVault & { keys: Map<string, Buffer>; gets: number } => {
  const keys = new Map<string, Buffer>();
  const vault = {
    keys,
    gets: 0,
    putIfAbsent: async (id: string, wrapped: Buffer) => {
      await Promise.resolve();
      if (!keys.has(id)) keys.set(id, wrapped);
      return keys.get(id)!;
    },
    get: async (id: string) => {
      vault.gets++;
      return keys.get(id) ?? null;
    },
    destroy: async (id: string) => keys.delete(id),
    close: async () => {},
  };
  return vault;
};

describe('PersonalDataCipher', () => {
  const master = randomBytes(32);

  it('seals and opens, Korean included, with a fresh IV each time', async () => {
    const c = new PersonalDataCipher(memoryVault(), master);
    const key = (await c.keyFor('t:u', { create: true }))!;
    const a = c.seal(key, '김민준 kim@example.com');
    const b = c.seal(key, '김민준 kim@example.com');
    expect(a).toMatch(/^pd1\.[A-Za-z0-9_-]+$/);
    expect(a).not.toBe(b);
    expect(a).not.toContain('kim');
    expect(c.open(key, a)).toBe('김민준 kim@example.com');
  });

  it('detects tampering', async () => {
    const c = new PersonalDataCipher(memoryVault(), master);
    const key = (await c.keyFor('t:u', { create: true }))!;
    const sealed = c.seal(key, 'secret');
    const raw = Buffer.from(sealed.slice(4), 'base64url');
    raw[raw.length - 1]! ^= 1;
    expect(() => c.open(key, `pd1.${raw.toString('base64url')}` as Sealed)).toThrow(/tampered/);
  });

  it('binds a ciphertext to its user: it does not open under another user', async () => {
    const vault = memoryVault();
    const c = new PersonalDataCipher(vault, master);
    const alice = (await c.keyFor('t:alice', { create: true }))!;
    const sealed = c.seal(alice, 'alice@example.com');
    // Same key bytes under another id still fails: the key id is authenticated data.
    expect(() => c.open({ keyId: 't:bob', key: alice.key }, sealed)).toThrow(/sealed for someone else/);
  });

  it('returns null for a destroyed key once forgotten, and never recreates it without create', async () => {
    const vault = memoryVault();
    const c = new PersonalDataCipher(vault, master);
    await c.keyFor('t:u', { create: true });
    await vault.destroy('t:u');
    c.forget('t:u');
    expect(await c.keyFor('t:u', { create: false })).toBeNull();
    expect(vault.keys.has('t:u')).toBe(false);
  });

  it('racing creators end with one key', async () => {
    const vault = memoryVault();
    const [a, b] = await Promise.all([
      new PersonalDataCipher(vault, master).keyFor('t:u', { create: true }),
      new PersonalDataCipher(vault, master).keyFor('t:u', { create: true }),
    ]);
    expect(Buffer.compare(a!.key, b!.key)).toBe(0);
  });

  it('caches unwrapped keys, bounded', async () => {
    const vault = memoryVault();
    const c = new PersonalDataCipher(vault, master, { cacheSize: 2 });
    await c.keyFor('a', { create: true });
    await c.keyFor('b', { create: true });
    const before = vault.gets;
    await c.keyFor('a', { create: false });
    expect(vault.gets).toBe(before);
    await c.keyFor('c', { create: true }); // evicts b, the least recently used
    const mid = vault.gets;
    await c.keyFor('a', { create: false });
    expect(vault.gets).toBe(mid);
    await c.keyFor('b', { create: false });
    expect(vault.gets).toBe(mid + 1);
  });

  it('refuses to unwrap with another master key', async () => {
    const vault = memoryVault();
    await new PersonalDataCipher(vault, master).keyFor('t:u', { create: true });
    await expect(new PersonalDataCipher(vault, randomBytes(32)).keyFor('t:u', { create: false })).rejects.toThrow(/master key differs/);
  });

  it('parses master keys from base64 or hex, 32 bytes only', () => {
    const k = randomBytes(32);
    expect(parseMasterKey(k.toString('base64')).equals(k)).toBe(true);
    expect(parseMasterKey(k.toString('hex')).equals(k)).toBe(true);
    expect(() => parseMasterKey('c2hvcnQ=')).toThrow(/32 bytes.*got 5 bytes/);
  });
});
