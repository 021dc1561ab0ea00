import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Sealed } from '../crypto/personal-data';
import type { KeyVault } from '../key-vault/port';
import { isSealed, parseMasterKey, PersonalDataCipher } from './personal-data';

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
    getMany: async (ids: readonly string[]) => {
      vault.gets++;
      return new Map(ids.filter((id) => keys.has(id)).map((id) => [id, keys.get(id)!]));
    },
    destroy: async (id: string) => keys.delete(id),
    list: async () => [],
    replaceMany: async () => 0,
    count: async () => keys.size,
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
    await expect(new PersonalDataCipher(vault, randomBytes(32)).keyFor('t:u', { create: false })).rejects.toThrow(/master key [0-9a-f]{16}, which this process does not have/);
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

  it('reads many keys in one vault read, cached ones from memory, without creating any', async () => {
    const vault = memoryVault();
    const writer = new PersonalDataCipher(vault, master);
    const a = (await writer.keyFor('t:a', { create: true }))!;
    const b = (await writer.keyFor('t:b', { create: true }))!;
    const c = new PersonalDataCipher(vault, master);
    await c.keyFor('t:a', { create: false });
    const before = vault.gets;
    const keys = await c.keysFor(['t:a', 't:b', 't:none', 't:b']);
    expect(vault.gets).toBe(before + 1);
    expect([...keys.keys()].sort()).toEqual(['t:a', 't:b']);
    expect(keys.get('t:a')!.key.equals(a.key)).toBe(true);
    expect(keys.get('t:b')!.key.equals(b.key)).toBe(true);
    expect(vault.keys.has('t:none')).toBe(false);
    // Both are cached now: a second round reads nothing.
    await c.keysFor(['t:a', 't:b']);
    expect(vault.gets).toBe(before + 1);
  });

  it('does not cache keys of a batch read before one was forgotten (destroyed meanwhile)', async () => {
    const vault = memoryVault();
    await new PersonalDataCipher(vault, master).keyFor('t:u', { create: true });
    const c = new PersonalDataCipher(vault, master);
    let release: () => void = () => {};
    const slowGetMany = vault.getMany;
    vault.getMany = async (ids: readonly string[]) => {
      const found = await slowGetMany(ids);
      await new Promise<void>((r) => (release = r));
      return found;
    };
    const reading = c.keysFor(['t:u']);
    await new Promise((r) => setTimeout(r, 0));
    await vault.destroy('t:u');
    c.forget('t:u');
    release();
    expect((await reading).has('t:u')).toBe(true); // it started before the destroy
    vault.getMany = slowGetMany;
    expect((await c.keysFor(['t:u'])).has('t:u')).toBe(false);
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
    expect(() => c.open(key, 'pd1.AAAA' as Sealed)).toThrow(/not a sealed value/);
    expect(() => c.open(key, `pd1.${Buffer.alloc(40).toString('base64url')}` as Sealed)).toThrow(/tampered/);
  });

  describe('contexts: a value is bound to its field and device', () => {
    it('opens where it was sealed, and nowhere else: not in another field, device or kind', async () => {
      const c = new PersonalDataCipher(memoryVault(), master);
      const key = (await c.keyFor('t:u', { create: true }))!;
      const phone = c.seal(key, '+821012345678', 'device:d1:sms');
      expect(phone).toMatch(/^pd2\./);
      expect(c.open(key, phone, 'device:d1:sms')).toBe('+821012345678');
      expect(() => c.open(key, phone, 'name')).toThrow(/another field or device/);
      expect(() => c.open(key, phone, 'device:d2:sms')).toThrow(/another field or device/);
      expect(() => c.open(key, phone, 'device:d1:email')).toThrow(/another field or device/);
      const name = c.seal(key, 'Ada', 'name');
      expect(() => c.open(key, name, 'device:d1:sms')).toThrow(/another field or device/);
    });

    it('a context rewritten inside the value (to make it pass) breaks the authentication', async () => {
      const c = new PersonalDataCipher(memoryVault(), master);
      const key = (await c.keyFor('t:u', { create: true }))!;
      const raw = Buffer.from(c.seal(key, '+821012345678', 'device:d1:sms').slice(4), 'base64url');
      const label = Buffer.from('device:d2:sms');
      expect(raw[0]).toBe(label.length);
      label.copy(raw, 1);
      expect(() => c.open(key, `pd2.${raw.toString('base64url')}` as Sealed, 'device:d2:sms')).toThrow(/tampered/);
    });

    it('still opens values sealed the old way (pd1, bound to the user only), in any field', async () => {
      const c = new PersonalDataCipher(memoryVault(), master);
      const key = (await c.keyFor('t:u', { create: true }))!;
      const old = c.seal(key, 'old@example.com');
      expect(old).toMatch(/^pd1\./);
      expect(c.open(key, old, 'device:d1:email')).toBe('old@example.com');
    });

    it('recognizes sealed values by structure, not by a prefix a user can type', async () => {
      const c = new PersonalDataCipher(memoryVault(), master);
      const key = (await c.keyFor('t:u', { create: true }))!;
      expect(isSealed(c.seal(key, 'x', 'name'))).toBe(true);
      expect(isSealed(c.seal(key, 'x'))).toBe(true);
      for (const typed of ['pd1.x', 'pd1.', 'pd2.abc', 'pd1.AAAA', `pd1.${'A'.repeat(40)}!`, `pd2.${Buffer.from([200, 1, 2]).toString('base64url')}`]) expect(isSealed(typed)).toBe(false);
    });
  });

  describe('master key rotation', () => {
    it('wraps new keys with the current master key, opens keys of the previous one, and rewraps them', async () => {
      const vault = memoryVault();
      const old = randomBytes(32);
      const fresh = randomBytes(32);
      const before = new PersonalDataCipher(vault, old);
      const k1 = (await before.keyFor('t:u1', { create: true }))!;
      const during = new PersonalDataCipher(vault, { current: fresh, previous: [old] });
      expect((await during.keyFor('t:u1', { create: false }))!.key.equals(k1.key)).toBe(true);
      const k2 = (await during.keyFor('t:u2', { create: true }))!;
      expect(during.isCurrent(vault.keys.get('t:u2')!)).toBe(true);
      expect(during.isCurrent(vault.keys.get('t:u1')!)).toBe(false);
      const rewrapped = during.rewrap('t:u1', vault.keys.get('t:u1')!)!;
      expect(during.rewrap('t:u2', vault.keys.get('t:u2')!)).toBeNull();
      vault.keys.set('t:u1', rewrapped);
      const after = new PersonalDataCipher(vault, fresh);
      expect((await after.keyFor('t:u1', { create: false }))!.key.equals(k1.key)).toBe(true);
      expect((await after.keyFor('t:u2', { create: false }))!.key.equals(k2.key)).toBe(true);
      // The old master key alone no longer opens what was rewrapped.
      await expect(new PersonalDataCipher(vault, old).keyFor('t:u1', { create: false })).rejects.toThrow(/does not have/);
    });

    it('opens keys wrapped before key ids (version 1) with whichever master key wrapped them', async () => {
      const vault = memoryVault();
      const old = randomBytes(32);
      const { createCipheriv } = await import('node:crypto');
      const dataKey = randomBytes(32);
      const iv = randomBytes(12);
      const enc = createCipheriv('aes-256-gcm', old, iv);
      enc.setAAD(Buffer.from('t:legacy'));
      const body = Buffer.concat([enc.update(dataKey), enc.final()]);
      vault.keys.set('t:legacy', Buffer.concat([Buffer.from([1]), iv, enc.getAuthTag(), body]));
      const during = new PersonalDataCipher(vault, { current: randomBytes(32), previous: [old] });
      expect((await during.keyFor('t:legacy', { create: false }))!.key.equals(dataKey)).toBe(true);
      expect(during.isCurrent(vault.keys.get('t:legacy')!)).toBe(false);
    });
  });

  it('fingerprints a value with a key derived from the data key: equal for one user, unrelated across users', async () => {
    const c = new PersonalDataCipher(memoryVault(), master);
    const a = (await c.keyFor('t:a', { create: true }))!;
    const b = (await c.keyFor('t:b', { create: true }))!;
    expect(c.fingerprint(a, 'sms\0+821012345678')).toBe(c.fingerprint(a, 'sms\0+821012345678'));
    expect(c.fingerprint(a, 'sms\0+821012345678')).not.toBe(c.fingerprint(b, 'sms\0+821012345678'));
    expect(c.fingerprint(a, 'sms\0+821012345678')).not.toContain('8210');
  });
});
