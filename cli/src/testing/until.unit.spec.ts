import { describe, expect, it } from 'vitest';
import { until } from './until';

describe('until', () => {
  it('answers once the check holds, after the polls it took', async () => {
    let n = 0;
    const waited = await until(() => ++n >= 3, 1_000, 'three polls', 10);
    expect(n).toBe(3);
    expect(waited).toBeGreaterThanOrEqual(15);
  });

  it('takes a throwing check for not yet, and names what it waited for and the last error when it gives up', async () => {
    let n = 0;
    const ok = await until(() => {
      if (++n < 3) throw new Error('connection refused');
      return true;
    }, 1_000, 'a restart', 5);
    expect(ok).toBeGreaterThanOrEqual(0);
    await expect(until(() => { throw new Error('connection refused'); }, 30, 'the server', 5)).rejects.toThrow(/^timed out after 30 ms waiting for the server; the last check threw: connection refused$/);
    await expect(until(() => false, 30, 'nothing', 5)).rejects.toThrow(/^timed out after 30 ms waiting for nothing$/);
  });
});
