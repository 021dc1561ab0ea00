import { describe, expect, it } from 'vitest';
import { countdown, csvRow, projectedEnd, ratePoints, shares } from './live';

describe('dashboard figures', () => {
  it('splits a bar into shares that add up to 100, pending the rest', () => {
    expect(shares({ total: 4, succeeded: 2, failed: 1, expired: 0 })).toEqual({ succeeded: 50, failed: 25, expired: 0, pending: 25 });
    expect(shares({ total: 0, succeeded: 0, failed: 0, expired: 0 })).toEqual({ succeeded: 0, failed: 0, expired: 0, pending: 100 });
    // Outcomes projected before the planning that counted them never overflow the bar.
    const over = shares({ total: 2, succeeded: 3, failed: 1, expired: 0 });
    expect(over.succeeded + over.failed + over.expired + over.pending).toBe(100);
  });

  it('projects the end from the rate seen live, else from the admission estimate', () => {
    const n = { status: 'DELIVERING', requestedAt: '2026-12-04T10:00:00.000Z', completedAt: null, estimateSeconds: 30, total: 100, done: 50 };
    const t0 = Date.parse('2026-12-04T10:00:10Z');
    // 10 deliveries a second, 50 left: 5 s from now.
    expect(projectedEnd(n, { at: t0, done: 0 }, { at: t0 + 5_000, done: 50 }, t0 + 5_000)).toBe(t0 + 10_000);
    expect(projectedEnd(n, null, null, t0)).toBe(Date.parse('2026-12-04T10:00:30Z'));
    expect(projectedEnd(n, null, null, t0 + 60_000)).toBe(t0 + 60_000);
    expect(projectedEnd({ ...n, status: 'COMPLETED', completedAt: '2026-12-04T10:00:07Z' }, null, null, t0)).toBe(Date.parse('2026-12-04T10:00:07Z'));
    expect(projectedEnd({ ...n, estimateSeconds: null }, null, null, t0)).toBeNull();
  });

  it('formats countdowns and rates', () => {
    expect(countdown(245_000)).toBe('4 min 05 s');
    expect(countdown(12_400)).toBe('12 s');
    expect(countdown(-90_000)).toBe('-1 min 30 s');
    expect(ratePoints([{ at: 0, done: 0 }, { at: 500, done: 10 }, { at: 1500, done: 40 }])).toEqual([{ at: 500, perSecond: 20 }, { at: 1500, perSecond: 30 }]);
  });

  it('quotes CSV cells and defuses spreadsheet formulas', () => {
    expect(csvRow([1, 'a,b', 'say "hi"', null])).toBe('1,"a,b","say ""hi""",');
    expect(csvRow(['=HYPERLINK("x")'])).toBe(`"'=HYPERLINK(""x"")"`);
  });
});
