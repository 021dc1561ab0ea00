import { describe, expect, it } from 'vitest';
import { BloomFilter } from './bloom';
import { HyperLogLog } from './hyperloglog';

describe('BloomFilter', () => {
  it('never forgets an item and keeps false positives near the target rate', () => {
    const bloom = new BloomFilter(100_000, 0.01);
    for (let i = 0; i < 100_000; i++) bloom.add(`n1:user-${i}:d${i % 3}`);
    for (let i = 0; i < 100_000; i++) expect(bloom.mightContain(`n1:user-${i}:d${i % 3}`)).toBe(true);
    let falsePositives = 0;
    for (let i = 0; i < 100_000; i++) if (bloom.mightContain(`n2:other-${i}`)) falsePositives++;
    expect(falsePositives / 100_000).toBeLessThan(0.02);
    expect(bloom.bytes).toBeLessThan(130_000);
  });
});

describe('HyperLogLog', () => {
  it.each([10, 1_000, 100_000, 1_000_000])('counts %i distinct items within 5%%', (n) => {
    const hll = new HyperLogLog();
    for (let i = 0; i < n; i++) {
      hll.add(`user-${i}`);
      hll.add(`user-${i}`);
    }
    expect(Math.abs(hll.count() - n) / n).toBeLessThan(0.05);
  });
  it('round-trips through base64', () => {
    const hll = new HyperLogLog();
    for (let i = 0; i < 5000; i++) hll.add(`u${i}`);
    expect(HyperLogLog.fromBase64(hll.toBase64()).count()).toBe(hll.count());
    expect(hll.toBase64().length).toBeLessThan(6000);
  });
});
