import { describe, expect, it } from 'vitest';
import { monotonicUlidFactory, ulid } from './ids';

const CROCKFORD = /^[0-9A-HJKMNP-TV-Z]{26}$/;

describe('ULIDs', () => {
  it('sort in the order they were made within one millisecond', () => {
    const next = monotonicUlidFactory();
    const ids = Array.from({ length: 10_000 }, () => next(1_700_000_000_000));
    expect(ids.every((id) => CROCKFORD.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    // Same time part; the random part counts up by one.
    expect(new Set(ids.map((id) => id.slice(0, 10))).size).toBe(1);
  });

  it('stay ordered when the clock steps back, and take fresh randomness in a new millisecond', () => {
    const next = monotonicUlidFactory();
    const a = next(2_000);
    const b = next(1_000);
    const c = next(3_000);
    expect([a, b, c].sort()).toEqual([a, b, c]);
    expect(b.slice(0, 10)).toBe(a.slice(0, 10));
    expect(c.slice(0, 10)).not.toBe(a.slice(0, 10));
  });

  it('the shared factory is monotonic across calls made in a tight loop', () => {
    const ids = Array.from({ length: 5_000 }, () => ulid());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('carries into the time part rather than wrapping when the random part is exhausted', () => {
    const next = monotonicUlidFactory((n) => Array.from({ length: n }, () => 31));
    const first = next(5);
    expect(first.slice(10)).toBe('Z'.repeat(16));
    const second = next(5);
    expect(second > first).toBe(true);
    expect(second.slice(0, 10)).toBe('0000000006');
  });
});
