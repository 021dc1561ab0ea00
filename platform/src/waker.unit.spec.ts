import { describe, expect, it } from 'vitest';
import { Waker } from './waker';

describe('Waker', () => {
  it('wakes a sleeping loop at once', async () => {
    const waker = new Waker(10_000);
    const t = Date.now();
    setTimeout(waker.notify, 20);
    await waker.sleep();
    expect(Date.now() - t).toBeLessThan(1000);
  });
  it('remembers a notify that came while the loop was busy', async () => {
    const waker = new Waker(10_000);
    waker.notify();
    const t = Date.now();
    await waker.sleep();
    expect(Date.now() - t).toBeLessThan(100);
    expect(waker.consume()).toBe(true);
    expect(waker.consume()).toBe(false);
  });
  it('times out to poll when nothing happens', async () => {
    const waker = new Waker(30);
    const t = Date.now();
    await waker.sleep();
    expect(Date.now() - t).toBeGreaterThanOrEqual(25);
  });
});
