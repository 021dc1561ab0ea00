import { describe, expect, it } from 'vitest';
import { cachedPerKey, cachedSendsUnderWay, type SendsUnderWay } from './admission';
import type { NotificationDocument } from '#projections/notifications/document';

describe('cachedSendsUnderWay', () => {
  it('reads the sends under way at most once per period, and again after a failed read', async () => {
    let t = 0;
    let reads = 0;
    let fail = false;
    const source: SendsUnderWay = async () => {
      reads++;
      if (fail) throw new Error('store down');
      return [];
    };
    const cached = cachedSendsUnderWay(source, 100, () => t);
    await Promise.all(Array.from({ length: 50 }, () => cached()));
    expect(reads).toBe(1);
    t = 99;
    await cached();
    expect(reads).toBe(1);
    // Past the period: answered with what is known, a read starts behind it.
    t = 100;
    fail = true;
    await cached();
    expect(reads).toBe(2);
    await new Promise((r) => setTimeout(r, 0));
    // The failed read kept nothing: the next call reads again.
    fail = false;
    await cached();
    expect(reads).toBe(3);
  });

  it('answers from the last list while a fresher one is read, and uses the fresher one once read', async () => {
    let t = 0;
    const lists: NotificationDocument[][] = [[], [{ notificationId: 'n1' } as NotificationDocument]];
    let release: (() => void) | null = null;
    let reads = 0;
    const source: SendsUnderWay = () => {
      const list = lists[reads++]!;
      // The second read is slow: the store is busy.
      return reads === 1 ? Promise.resolve(list) : new Promise((resolve) => (release = () => resolve(list)));
    };
    const cached = cachedSendsUnderWay(source, 100, () => t);
    expect(await cached()).toEqual([]);
    t = 150;
    // Not held up by the slow read, and only one read runs for many calls.
    expect(await Promise.all([cached(), cached(), cached()])).toEqual([[], [], []]);
    expect(reads).toBe(2);
    release!();
    await new Promise((r) => setTimeout(r, 0));
    expect((await cached()).map((n) => n.notificationId)).toEqual(['n1']);
    expect(reads).toBe(2);
  });

  it('reads a list that takes long to read no more than a tenth of the time', async () => {
    let t = 0;
    let reads = 0;
    // Each read takes 50 ms of the clock.
    const source: SendsUnderWay = async () => {
      reads++;
      t += 50;
      return [];
    };
    const cached = cachedSendsUnderWay(source, 100, () => t);
    await cached();
    t = 400;
    await cached();
    expect(reads).toBe(1);
    t = 500;
    await cached();
    expect(reads).toBe(2);
  });
});

describe('cachedPerKey', () => {
  it('reads each key at most once per period, and again after a failed read', async () => {
    let t = 0;
    const reads: string[] = [];
    let fail = false;
    const cached = cachedPerKey(async (key: string) => {
      reads.push(key);
      if (fail) throw new Error('store down');
      return key.length;
    }, 1_000, () => t);
    expect(await Promise.all([cached('acme'), cached('acme'), cached('platform')])).toEqual([4, 4, 8]);
    t = 999;
    await cached('acme');
    expect(reads).toEqual(['acme', 'platform']);
    t = 1_000;
    fail = true;
    await expect(cached('acme')).rejects.toThrow('store down');
    fail = false;
    expect(await cached('acme')).toBe(4);
    expect(reads).toEqual(['acme', 'platform', 'acme', 'acme']);
  });
});
