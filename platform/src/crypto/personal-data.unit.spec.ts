import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Sealed } from '../crypto/personal-data';
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
    expect(parseMasterKey(` ${k.toString('base64url')}\n`).equals(k)).toBe(true);
    expect(parseMasterKey(k.toString('hex')).equals(k)).toBe(true);
    expect(parseMasterKey(k.toString('hex').toUpperCase()).equals(k)).toBe(true);
    expect(() => parseMasterKey('c2hvcnQ=')).toThrow(/32 bytes.*got 5 bytes/);
    expect(() => parseMasterKey(randomBytes(33).toString('base64'))).toThrow(/32 bytes.*got 33 bytes/);
    expect(() => parseMasterKey(k.toString('hex').slice(0, 63))).toThrow(/32 bytes/);
    // Node's base64 decoder skips characters it does not know: these must not pass as a key.
    const b64 = k.toString('base64');
    expect(() => parseMasterKey(`${b64.slice(0, 10)}!!${b64.slice(10)}`)).toThrow(/neither/);
    expect(() => parseMasterKey(`${b64.replace(/=+$/, '')}AAAA`)).toThrow(/32 bytes/);
    // The last character carries 2 bits of the key and 4 that must be zero: a typo there is caught.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const typo = `${b64.slice(0, 42)}${alphabet[alphabet.indexOf(b64[42]!) ^ 1]}=`;
    expect(() => parseMasterKey(typo)).toThrow(/32 bytes/);
    expect(() => parseMasterKey('')).toThrow(/32 bytes/);
  });

  it('never names the master key in its errors', () => {
    const secret = `${randomBytes(30).toString('hex')}zz`;
    expect(() => parseMasterKey(secret)).toThrow();
    try {
      parseMasterKey(secret);
    } catch (e) {
      expect(String((e as Error).message)).not.toContain(secret.slice(0, 16));
    }
  });

  it('does not cache a key read before it was forgotten (destroyed meanwhile)', async () => {
    const vault = memoryVault();
    const c = new PersonalDataCipher(vault, master);
    await new PersonalDataCipher(vault, master).keyFor('t:u', { create: true });
    let release: () => void = () => {};
    const slowGet = vault.get;
    vault.get = async (id: string) => {
      const wrapped = await slowGet(id);
      await new Promise<void>((r) => (release = r));
      return wrapped;
    };
    const reading = c.keyFor('t:u', { create: false });
    await new Promise((r) => setTimeout(r, 0));
    await vault.destroy('t:u');
    c.forget('t:u');
    release();
    expect(await reading).not.toBeNull(); // it started before the destroy
    vault.get = slowGet;
    expect(await c.keyFor('t:u', { create: false })).toBeNull();
  });

  it('caches nothing with cacheSize 0, and refuses a bad size or master key', async () => {
    const vault = memoryVault();
    const c = new PersonalDataCipher(vault, master, { cacheSize: 0 });
    await c.keyFor('a', { create: true });
    const before = vault.gets;
    await c.keyFor('a', { create: false });
    expect(vault.gets).toBe(before + 1);
    expect(() => new PersonalDataCipher(vault, master, { cacheSize: -1 })).toThrow(/cacheSize/);
    expect(() => new PersonalDataCipher(vault, randomBytes(16))).toThrow(/32 bytes/);
  });

  it('seals the empty string, and refuses what is not a sealed value', async () => {
    const c = new PersonalDataCipher(memoryVault(), master);
    const key = (await c.keyFor('t:u', { create: true }))!;
    expect(c.open(key, c.seal(key, ''))).toBe('');
    expect(() => c.open(key, 'plain text' as Sealed)).toThrow(/not a sealed value/);
    expect(() => c.open(key, 'pd1.AAAA' as Sealed)).toThrow(/tampered/);
  });
});
