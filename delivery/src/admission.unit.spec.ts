import { describe, expect, it } from 'vitest';
import { cachedSendsUnderWay, type SendsUnderWay } from './admission';

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
    t = 100;
    fail = true;
    await expect(cached()).rejects.toThrow('store down');
    expect(reads).toBe(2);
    fail = false;
    await cached();
    expect(reads).toBe(3);
  });
});
