import { describe, expect, it } from 'vitest';
import { StringSet } from './string-set';

describe('a set of strings with a table of its own', () => {
  it('counts each string once, tells members from others, and stays exact past its expected size', () => {
    const set = new StringSet(100);
    const added = Array.from({ length: 5_000 }, (_, i) => set.add(`user-${i % 1_000}`)).filter(Boolean).length;
    expect(added).toBe(1_000);
    expect(set.size).toBe(1_000);
    // Members are refused again; others are new.
    for (let i = 0; i < 1_000; i++) expect(set.add(`user-${i}`)).toBe(false);
    expect(set.add('user-1000')).toBe(true);
    expect(set.add('')).toBe(true);
    expect(set.size).toBe(1_002);
  });

  it('is empty after clear and counts again from zero', () => {
    const set = new StringSet(10);
    for (let i = 0; i < 50; i++) set.add(`a${i}`);
    set.clear();
    expect(set.size).toBe(0);
    expect(set.add('a1')).toBe(true);
    expect(set.add('a1')).toBe(false);
    expect(set.size).toBe(1);
  });
});
