import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Sealed } from '../crypto/personal-data';
import { openSqliteKeyVault, type SqliteKeyVault } from '../key-vault/sqlite';
import { scanFiles } from '../testing/scan';
import { PersonalDataCipher } from './personal-data';

describe('PersonalDataCipher with the SQLite key vault', () => {
  const master = randomBytes(32);
  const open: SqliteKeyVault[] = [];
  const vaultIn = (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pd-'))) => {
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    open.push(vault);
    return { vault, dir };
  };
  afterEach(async () => {
    await Promise.all(open.splice(0).map((v) => v.close()));
  });

  it('round-trips Korean text with a fresh IV each time, across cipher instances', async () => {
    const { vault } = vaultIn();
    const a = new PersonalDataCipher(vault, master);
    const text = '홍길동 <hong@example.kr> +82 10-1234-5678 😀';
    const key = (await a.keyFor('acme:u1', { create: true }))!;
    const sealed = [a.seal(key, text), a.seal(key, text)];
    expect(sealed[0]).not.toBe(sealed[1]);
    const ivs = sealed.map((s) => Buffer.from(s.slice(4), 'base64url').subarray(0, 12).toString('hex'));
    expect(ivs[0]).not.toBe(ivs[1]);
    const b = new PersonalDataCipher(vault, master);
    const again = (await b.keyFor('acme:u1', { create: false }))!;
    for (const s of sealed) expect(b.open(again, s)).toBe(text);
  });

  it('detects tampering and binds each value to its key id', async () => {
    const { vault } = vaultIn();
    const c = new PersonalDataCipher(vault, master);
    const alice = (await c.keyFor('acme:alice', { create: true }))!;
    const bob = (await c.keyFor('acme:bob', { create: true }))!;
    const sealed = c.seal(alice, 'alice@example.com');
    for (const at of [0, 12, 28, 30]) {
      const raw = Buffer.from(sealed.slice(4), 'base64url');
      raw[at]! ^= 0x01;
      expect(() => c.open(alice, `pd1.${raw.toString('base64url')}` as Sealed)).toThrow(/tampered/);
    }
    expect(() => c.open(bob, sealed)).toThrow(/sealed for someone else/);
    expect(() => c.open({ keyId: 'acme:bob', key: alice.key }, sealed)).toThrow(/sealed for someone else/);
  });

  it('has no key after the vault destroyed it, and its wrapped bytes are gone from the files', async () => {
    const { vault, dir } = vaultIn();
    const c = new PersonalDataCipher(vault, master);
    const key = (await c.keyFor('acme:u1', { create: true }))!;
    const sealed = c.seal(key, 'secret');
    const wrapped = (await vault.get('acme:u1'))!;
    expect(await scanFiles(dir, [wrapped])).not.toEqual([]);
    expect(await vault.destroy('acme:u1')).toBe(true);
    c.forget('acme:u1');
    expect(await c.keyFor('acme:u1', { create: false })).toBeNull();
    expect(await new PersonalDataCipher(vault, master).keyFor('acme:u1', { create: false })).toBeNull();
    expect(await scanFiles(dir, [wrapped, key.key])).toEqual([]);
    // The ciphertext outlives the key, and nothing opens it any more.
    const fresh = (await c.keyFor('acme:u1', { create: true }))!;
    expect(() => c.open(fresh, sealed)).toThrow(/tampered/);
  });

  it('racing creators, on two connections to one vault file, end with one key', async () => {
    const { vault, dir } = vaultIn();
    const { vault: other } = vaultIn(dir);
    const ciphers = [new PersonalDataCipher(vault, master), new PersonalDataCipher(other, master), new PersonalDataCipher(vault, master)];
    const keys = await Promise.all(ciphers.map((c) => c.keyFor('acme:race', { create: true })));
    for (const k of keys) expect(k!.key.equals(keys[0]!.key)).toBe(true);
    const sealed = ciphers[1]!.seal(keys[1]!, 'x');
    expect(ciphers[0]!.open((await new PersonalDataCipher(vault, master).keyFor('acme:race', { create: false }))!, sealed)).toBe('x');
  });

  it('fails with a clear error under another master key', async () => {
    const { vault } = vaultIn();
    await new PersonalDataCipher(vault, master).keyFor('acme:u1', { create: true });
    await expect(new PersonalDataCipher(vault, randomBytes(32)).keyFor('acme:u1', { create: false })).rejects.toThrow(
      /data key acme:u1 is wrapped by master key [0-9a-f]{16}, which this process does not have/,
    );
  });
});
