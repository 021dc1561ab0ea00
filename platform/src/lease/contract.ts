import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LeaseStore } from './port';

/** `open` gives two stores on the same backing data (two instances) and a way to move their clock. */
export function leaseStoreContract(
  adapterName: string,
  open: () => Promise<{ a: LeaseStore; b: LeaseStore; advance: (ms: number) => void; cleanup: () => Promise<void> }>,
): void {
  describe(`lease store contract: ${adapterName}`, () => {
    let a: LeaseStore;
    let b: LeaseStore;
    let advance: (ms: number) => void;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ a, b, advance, cleanup } = await open());
    });
    afterAll(async () => cleanup());

    it('gives a lease to one holder at a time, and renews it for that holder', async () => {
      const name = randomUUID();
      expect(await a.acquire(name, 'one', 1000)).toBe(true);
      expect(await b.acquire(name, 'two', 1000)).toBe(false);
      advance(800);
      expect(await a.acquire(name, 'one', 1000)).toBe(true);
      advance(800);
      expect(await b.acquire(name, 'two', 1000)).toBe(false);
    });

    it('hands a lapsed lease to another holder', async () => {
      const name = randomUUID();
      expect(await a.acquire(name, 'one', 1000)).toBe(true);
      advance(1001);
      expect(await b.acquire(name, 'two', 1000)).toBe(true);
      expect(await a.acquire(name, 'one', 1000)).toBe(false);
    });

    it('frees a released lease at once, but only for its holder', async () => {
      const name = randomUUID();
      expect(await a.acquire(name, 'one', 60_000)).toBe(true);
      await b.release(name, 'two');
      expect(await b.acquire(name, 'two', 60_000)).toBe(false);
      await a.release(name, 'one');
      expect(await b.acquire(name, 'two', 60_000)).toBe(true);
    });

    it('lets exactly one of many racing contenders win', async () => {
      const name = randomUUID();
      const wins = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).acquire(name, `h${i}`, 60_000)));
      expect(wins.filter(Boolean)).toHaveLength(1);
    });
  });
}
