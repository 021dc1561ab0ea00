import { describe, expect, it } from 'vitest';
import { Stalled, StallMonitor, type StallLimits } from './stall';

const LIMITS: StallLimits = { silentMs: 750, messages: 3 };

/** A monitor on an injected clock, checked every 50 ms (late by `lateBy` where asked), and what stalled when. */
const rig = (limits: StallLimits | null = LIMITS) => {
  let now = 0;
  const monitor = new StallMonitor({ intervalMs: 50, maxStepMs: 150, maxLateMs: 250 }, () => now);
  const stalls: { at: number; silentMs: number }[] = [];
  const watch = monitor.watch(
    () => limits,
    (silentMs) => {
      stalls.push({ at: now, silentMs });
      watch.abort(new Stalled(silentMs));
    },
  );
  /** Advances the clock to `until`, one on-time check every 50 ms, running `each` first (answers read in the I/O phase). */
  const run = (until: number, each: (t: number) => void = () => {}) => {
    while (now + 50 <= until) {
      now += 50;
      each(now);
      monitor.check(now, true);
    }
  };
  return { monitor, watch, stalls, run, set: (t: number) => (now = t), at: () => now };
};

describe('stall detection', () => {
  it('cancels the calls of an integration silent for its limit, and not a tick before', () => {
    const r = rig();
    r.monitor.check(0, true);
    const call = new AbortController();
    r.watch.begin(call, 100);
    r.run(700);
    expect(r.stalls).toEqual([]);
    expect(call.signal.aborted).toBe(false);
    r.run(800);
    expect(r.stalls).toEqual([{ at: 750, silentMs: 750 }]);
    expect(call.signal.aborted).toBe(true);
    expect(call.signal.reason).toBeInstanceOf(Stalled);
    expect((call.signal.reason as Error).message).toBe('no answer from the provider for 750 ms');
    // Cancelled calls are no longer watched: no second verdict for them.
    r.run(3_000);
    expect(r.stalls).toHaveLength(1);
    expect(r.watch.outstanding).toBe(0);
  });

  it('leaves a slow integration alone while it answers something, however long each call takes', () => {
    const r = rig();
    r.monitor.check(0, true);
    // A batch call out for 5 s whose requests answer one by one (FCM's sendEach), and more calls behind it.
    r.watch.begin(new AbortController(), 100);
    r.run(5_000, (t) => {
      if (t % 400 === 0) r.watch.heard();
      if (t % 1_000 === 0) r.watch.begin(new AbortController(), 1);
    });
    expect(r.stalls).toEqual([]);
  });

  it('counts silence only while calls are outstanding, from the first of them', () => {
    const r = rig();
    r.monitor.check(0, true);
    // Idle for 10 s: no calls, no silence.
    r.run(10_000);
    const call = new AbortController();
    r.watch.begin(call, 5);
    r.run(10_700);
    expect(r.stalls).toEqual([]);
    r.watch.end(call);
    // A new call after the last one answered starts from zero again.
    r.watch.heard();
    r.watch.begin(new AbortController(), 5);
    r.run(11_400);
    expect(r.stalls).toEqual([]);
    r.run(11_500);
    expect(r.stalls.map((s) => s.at)).toEqual([11_450]);
  });

  it('judges a batch call by the messages it carries: one hung request of a hundred recipients (SendGrid) stalls', () => {
    const r = rig();
    r.monitor.check(0, true);
    const batch = new AbortController();
    r.watch.begin(batch, 100);
    r.run(800);
    expect(r.stalls.map((s) => s.at)).toEqual([750]);
    expect(batch.signal.aborted).toBe(true);
    // Two messages waiting are not enough: a slow request of two is its deadline's.
    const r2 = rig();
    r2.monitor.check(0, true);
    r2.watch.begin(new AbortController(), 2);
    r2.run(3_000);
    expect(r2.stalls).toEqual([]);
  });

  it('needs several messages to have waited that long: a single slow one is left to its deadline', () => {
    const r = rig();
    r.monitor.check(0, true);
    r.watch.begin(new AbortController(), 1);
    r.watch.begin(new AbortController(), 1);
    r.run(2_000);
    expect(r.stalls).toEqual([]);
    // A third request, but young: silence is long, only two have waited that long.
    r.watch.begin(new AbortController(), 1);
    r.run(2_700);
    expect(r.stalls).toEqual([]);
    r.run(2_800);
    expect(r.stalls.map((s) => s.at)).toEqual([2_750]);
  });

  it('never judges an integration whose typical latency is not known yet', () => {
    const r = rig(null);
    r.monitor.check(0, true);
    r.watch.begin(new AbortController(), 100);
    r.run(20_000);
    expect(r.stalls).toEqual([]);
  });

  it("does not count its own blocked event loop as the provider's silence", () => {
    const r = rig();
    r.monitor.check(0, true);
    r.watch.begin(new AbortController(), 100);
    r.run(300);
    // The loop is blocked for 2 s: the next tick fires late, gives no verdict and adds one step.
    r.set(2_300);
    r.monitor.check(2_300, false);
    expect(r.stalls).toEqual([]);
    // The answers that waited in the sockets are read in the I/O phase before the next check.
    r.watch.heard();
    r.run(2_900);
    expect(r.stalls).toEqual([]);
    // Without them the provider is silent: 300 ms before the block, one 150 ms step, then on-time ticks.
    const r2 = rig();
    r2.monitor.check(0, true);
    r2.watch.begin(new AbortController(), 100);
    r2.run(300);
    r2.set(2_300);
    r2.monitor.check(2_300, false);
    r2.run(2_550);
    expect(r2.stalls).toEqual([]);
    r2.run(2_650);
    expect(r2.stalls).toEqual([{ at: 2_600, silentMs: 750 }]);
  });

  it('gives no verdict on a late tick, even past the limit', () => {
    const r = rig();
    r.monitor.check(0, true);
    r.watch.begin(new AbortController(), 100);
    r.run(700);
    r.set(860);
    r.monitor.check(860, false);
    expect(r.stalls).toEqual([]);
    r.run(950);
    expect(r.stalls.map((s) => s.at)).toEqual([910]);
  });

  it('on real timers: a hang is cancelled within the limit and a tick, a blocked loop is not taken for one', async () => {
    const monitor = new StallMonitor({ intervalMs: 50, maxStepMs: 150, maxLateMs: 250 });
    const stalled: number[] = [];
    const watch = monitor.watch(
      () => ({ silentMs: 500, messages: 1 }),
      (ms) => {
        stalled.push(ms);
        watch.abort(new Stalled(ms));
      },
    );
    monitor.start();
    try {
      await new Promise((r) => setTimeout(r, 120));
      // Blocked for 1 s right after a call went out, then 200 ms on time: 1.2 s of wall time, no stall.
      const first = new AbortController();
      watch.begin(first, 1);
      const blockedUntil = performance.now() + 1_000;
      while (performance.now() < blockedUntil);
      await new Promise((r) => setTimeout(r, 200));
      expect(stalled).toEqual([]);
      watch.end(first);
      watch.heard();
      // A call nobody answers: cancelled after 500 ms of silence and at most a tick or two more.
      const hung = new AbortController();
      const started = performance.now();
      watch.begin(hung, 1);
      await new Promise<void>((resolve) => hung.signal.addEventListener('abort', () => resolve()));
      const took = performance.now() - started;
      expect(took).toBeGreaterThanOrEqual(500);
      expect(took).toBeLessThan(800);
    } finally {
      monitor.stop();
    }
  });
});
