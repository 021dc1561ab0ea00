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

    it('a destroyed id can hold a new key later', async () => {
      const id = randomUUID();
      await vault.putIfAbsent(id, randomBytes(61));
      await vault.destroy(id);
      const fresh = randomBytes(61);
      expect(Buffer.compare(await vault.putIfAbsent(id, fresh), fresh)).toBe(0);
    });
  });
}
