import { describe, expect, it } from 'vitest';
import { SendWindow } from './window';

type D = { rank: number; id: number };
let ids = 0;
const due = (deadline: number): D => ({ rank: deadline, id: ids++ });

/** Fills the window with `n` deliveries due at `deadline`; returns them. */
const fill = (w: SendWindow<D>, n: number, deadline: number): D[] => {
  const items = Array.from({ length: n }, () => due(deadline));
  for (const i of items) w.add(i);
  return items;
};

describe('SendWindow', () => {
  it('is sized by time: the rate deliveries leave it at times the target latency', () => {
    let t = 0;
    const w = new SendWindow<D>({ max: 4000, targetMs: 500, min: 100, adjustMs: 500 }, t);
    expect(w.target).toBe(100);
    /** A saturated window whose deliveries leave at `perSecond`, for `steps` adjustments; the sizes it took. */
    const saturated = (perSecond: number, steps: number): number[] => {
      const sizes: number[] = [];
      for (let step = 0; step < steps; step++) {
        const items = fill(w, perSecond / 2, 10);
        w.filled();
        for (const i of items) w.delete(i);
        t += 500;
        w.adjust(t);
        sizes.push(w.target);
      }
      return sizes;
    };
    // 3,000 a second: it grows towards 1,500, doubling at most per step.
    const growing = saturated(3000, 20);
    expect(growing.slice(0, 4)).toEqual([200, 400, 800, 1500]);
    expect(growing.at(-1)).toBe(1500);
    // 600 a second: it shrinks towards 300, the rate smoothed (a tenth of a second's bursts do not swing it).
    const shrinking = saturated(600, 20);
    expect(shrinking[0]).toBe(Math.round((0.3 * 600 + 0.7 * 3000) / 2));
    expect(shrinking.every((size, i) => i === 0 || size <= shrinking[i - 1]!)).toBe(true);
    expect(Math.abs(shrinking.at(-1)! - 300)).toBeLessThanOrEqual(2);
  });

  it('does not shrink while it is not full (the rate then says how much work came), and stays within min and max', () => {
    let t = 0;
    const w = new SendWindow<D>({ max: 1000, targetMs: 500, min: 200, adjustMs: 500 }, t);
    for (let step = 0; step < 10; step++) {
      const items = fill(w, 1000, 10);
      w.filled();
      for (const i of items) w.delete(i);
      t += 500;
      w.adjust(t);
    }
    expect(w.target).toBe(1000);
    for (let step = 0; step < 10; step++) {
      for (const i of fill(w, 10, 10)) w.delete(i);
      t += 500;
      w.adjust(t);
    }
    expect(w.target).toBe(1000);
    for (let step = 0; step < 10; step++) {
      w.filled();
      t += 500;
      w.adjust(t); // nothing left: a provider that hangs
    }
    expect(w.target).toBe(200);
    const off = new SendWindow<D>({ max: 1000, targetMs: 0, min: 200, adjustMs: 500 }, 0);
    off.filled();
    off.adjust(10_000);
    expect(off.target).toBe(1000);
  });

  it('grows while the process is not busy: deliveries then wait for something a smaller window would not shorten', () => {
    let t = 0;
    const w = new SendWindow<D>({ max: 1000, targetMs: 500, min: 100, adjustMs: 500 }, t);
    // Full, deliveries leaving at 100 a second (a store's lock, a slow provider), the event loop mostly idle.
    for (let step = 0; step < 5; step++) {
      const items = fill(w, 50, 10);
      w.filled();
      for (const i of items) w.delete(i);
      t += 500;
      expect(w.adjust(t, 0.3)).toBe(true);
    }
    expect(w.target).toBe(1000);
    // The same rate with the process busy: the rate decides.
    for (let step = 0; step < 20; step++) {
      const items = fill(w, 50, 10);
      w.filled();
      for (const i of items) w.delete(i);
      t += 500;
      w.adjust(t, 0.95);
    }
    expect(w.target).toBe(100);
    expect(w.adjust(t + 100, 0.95)).toBe(false);
  });

  it('lets a delivery due before something in it use the room up to max; others only the window', () => {
    let t = 0;
    const w = new SendWindow<D>({ max: 1000, targetMs: 500, min: 100, adjustMs: 500 }, t);
    for (let step = 0; step < 10; step++) {
      const items = fill(w, 100, 30);
      w.filled();
      for (const i of items) w.delete(i);
      t += 500;
      w.adjust(t);
    }
    expect(w.target).toBe(100);
    const looser = fill(w, 100, 30);
    expect(w.room(30)).toBe(0);
    expect(w.room(40)).toBe(0);
    expect(w.overtakes(10)).toBe(true);
    expect(w.room(10)).toBe(900);
    // Once the looser work is gone, nothing is overtaken: the tighter send has the window like any other.
    const tighter = fill(w, 50, 10);
    for (const i of looser) w.delete(i);
    expect(w.overtakes(10)).toBe(false);
    expect(w.room(10)).toBe(50);
    for (const i of tighter) w.delete(i);
    expect(w.size).toBe(0);
    expect(w.overtakes(10)).toBe(false);
  });

  it('counts each delivery once, however often it is added or removed', () => {
    const w = new SendWindow<D>({ max: 10, targetMs: 500, min: 1 }, 0);
    const a = due(5);
    w.add(a);
    w.add(a);
    expect(w.size).toBe(1);
    expect(w.delete(a)).toBe(true);
    expect(w.delete(a)).toBe(false);
    expect(w.overtakes(1)).toBe(false);
    expect([...w]).toEqual([]);
  });
});
