import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyVault } from './port';

/** The behaviour every key vault adapter must have. Ids are unique per test. */
export function keyVaultContract(adapterName: string, open: () => Promise<{ vault: KeyVault; cleanup: () => Promise<void> }>): void {
  describe(`key vault contract: ${adapterName}`, () => {
    let vault: KeyVault;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ vault, cleanup } = await open());
    });
    afterAll(async () => cleanup());

    it('stores a key and returns it', async () => {
      const id = randomUUID();
      const key = randomBytes(61);
      expect(await vault.get(id)).toBeNull();
      expect(Buffer.compare(await vault.putIfAbsent(id, key), key)).toBe(0);
      expect(Buffer.compare((await vault.get(id))!, key)).toBe(0);
    });

    it('keeps the first key when two writers race', async () => {
      const id = randomUUID();
      const [a, b] = [randomBytes(61), randomBytes(61)];
      const [ra, rb] = await Promise.all([vault.putIfAbsent(id, a), vault.putIfAbsent(id, b)]);
      expect(Buffer.compare(ra, rb)).toBe(0);
      expect(Buffer.compare((await vault.get(id))!, ra)).toBe(0);
    });

    it('destroys a key for good', async () => {
      const id = randomUUID();
      await vault.putIfAbsent(id, randomBytes(61));
      expect(await vault.destroy(id)).toBe(true);
      expect(await vault.get(id)).toBeNull();
      expect(await vault.destroy(id)).toBe(false);
    });

    it('never overwrites a stored key', async () => {
      const id = randomUUID();
      const first = randomBytes(61);
      await vault.putIfAbsent(id, first);
      expect(Buffer.compare(await vault.putIfAbsent(id, randomBytes(61)), first)).toBe(0);
      expect(Buffer.compare((await vault.get(id))!, first)).toBe(0);
    });

    it('keeps bytes exactly, zeros and high bytes included, under any id', async () => {
      const id = `테넌트:${randomUUID()}`;
      const key = Buffer.from([0, 0, 255, 1, 0, 128, 0]);
      await vault.putIfAbsent(id, key);
      expect((await vault.get(id))!.equals(key)).toBe(true);
    });

    it('destroys only the key asked for', async () => {
      const [a, b] = [randomUUID(), randomUUID()];
      const kb = randomBytes(61);
      await vault.putIfAbsent(a, randomBytes(61));
      await vault.putIfAbsent(b, kb);
      expect(await vault.destroy(a)).toBe(true);
      expect((await vault.get(b))!.equals(kb)).toBe(true);
    });

    it('reads many keys at once: those that exist, destroyed and unknown ids left out', async () => {
      const [a, b, gone, unknown] = [`테넌트:${randomUUID()}`, randomUUID(), randomUUID(), randomUUID()];
      const [ka, kb] = [randomBytes(61), Buffer.from([0, 255, 0])];
      await vault.putIfAbsent(a, ka);
      await vault.putIfAbsent(b, kb);
      await vault.putIfAbsent(gone, randomBytes(61));
      await vault.destroy(gone);
      const found = await vault.getMany([a, unknown, b, gone, a]);
      expect([...found.keys()].sort()).toEqual([a, b].sort());
      expect(found.get(a)!.equals(ka)).toBe(true);
      expect(found.get(b)!.equals(kb)).toBe(true);
      expect((await vault.getMany([])).size).toBe(0);
    });

    it('a destroyed id can hold a new key later', async () => {
      const id = randomUUID();
      await vault.putIfAbsent(id, randomBytes(61));
      await vault.destroy(id);
      const fresh = randomBytes(61);
      expect(Buffer.compare(await vault.putIfAbsent(id, fresh), fresh)).toBe(0);
    });

    it('lists keys in id order, page by page, from the start or after an id', async () => {
      const prefix = `list-${randomUUID()}`;
      const ids = Array.from({ length: 7 }, (_, i) => `${prefix}:${String.fromCharCode(97 + ((i * 3) % 7))}`);
      for (const id of ids) await vault.putIfAbsent(id, randomBytes(61));
      const seen: string[] = [];
      let after: string | null = `${prefix}:`;
      for (;;) {
        const page: readonly { keyId: string; wrapped: Buffer }[] = await vault.list(after, 3);
        const mine = page.filter((k) => k.keyId.startsWith(prefix));
        seen.push(...mine.map((k) => k.keyId));
        if (page.length < 3 || mine.length < page.length) break;
        after = page.at(-1)!.keyId;
      }
      expect(seen).toEqual([...ids].sort());
      const first = await vault.list(null, 1);
      expect(first).toHaveLength(1);
      expect(Buffer.isBuffer(first[0]!.wrapped)).toBe(true);
    });

    it('replaces keys only where they still hold the expected bytes, and never brings a destroyed key back', async () => {
      const [a, b, c] = [randomUUID(), randomUUID(), randomUUID()];
      const [ka, kb, kc] = [randomBytes(61), randomBytes(61), randomBytes(61)];
      await vault.putIfAbsent(a, ka);
      await vault.putIfAbsent(b, kb);
      await vault.putIfAbsent(c, kc);
      await vault.destroy(c);
      const [na, nb, nc] = [randomBytes(69), randomBytes(69), randomBytes(69)];
      const replaced = await vault.replaceMany([
        { keyId: a, expected: ka, wrapped: na },
        { keyId: b, expected: randomBytes(61), wrapped: nb },
        { keyId: c, expected: kc, wrapped: nc },
      ]);
      expect(replaced).toBe(1);
      expect((await vault.get(a))!.equals(na)).toBe(true);
      expect((await vault.get(b))!.equals(kb)).toBe(true);
      expect(await vault.get(c)).toBeNull();
      expect(await vault.replaceMany([])).toBe(0);
      expect(await vault.count()).toBeGreaterThanOrEqual(2);
    });
  });
}
