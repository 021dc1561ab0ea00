import { describe, expect, it } from 'vitest';
import { CallDeadlines, CompletionWindow, DeadlineExceeded, GivenUp, settleWithin } from './deadline';

const policy = { timeoutMs: 10_000, minTimeoutMs: 1_000, timeoutLatencyFactor: 4, minStallMs: 1_000, stallLatencyFactor: 4 };

describe('call deadlines from observed latency', () => {
  it('is the configured timeout until enough calls were seen, then max(floor, k x p99), capped', () => {
    let now = 0;
    const d = new CallDeadlines(policy, { size: 256, maxAgeMs: 60_000, minSamples: 5, skipFirst: 2 }, () => now);
    expect(d.timeoutMs()).toBe(10_000);
    // The first calls set up connections: not samples.
    d.record(4_000);
    d.record(4_000);
    for (let i = 0; i < 4; i++) d.record(20);
    expect(d.timeoutMs()).toBe(10_000);
    d.record(20);
    expect(d.timeoutMs()).toBe(1_000); // 4 x 20 ms is under the floor
    for (let i = 0; i < 200; i++) d.record(400);
    now += 300;
    expect(d.p99()).toBe(400);
    expect(d.timeoutMs()).toBe(1_600);
    for (let i = 0; i < 256; i++) d.record(5_000);
    now += 300;
    expect(d.timeoutMs()).toBe(10_000);
  });

  it('takes the 99th percentile, so a rare slow call does not stretch every deadline', () => {
    const d = new CallDeadlines(policy, { size: 256, maxAgeMs: 60_000, minSamples: 5, skipFirst: 0 });
    for (let i = 0; i < 198; i++) d.record(100);
    d.record(9_000);
    d.record(9_000);
    expect(d.p99()).toBe(100);
    expect(d.timeoutMs()).toBe(1_000);
  });

  it('allows a silence of max(floor, k x p50) before a stall, none while the typical latency is unknown', () => {
    let now = 0;
    const d = new CallDeadlines({ ...policy, minStallMs: 750, stallLatencyFactor: 3 }, { size: 256, maxAgeMs: 60_000, minSamples: 5, skipFirst: 2 }, () => now);
    d.record(4_000);
    d.record(4_000);
    for (let i = 0; i < 4; i++) d.record(20);
    expect(d.stallMs()).toBeNull();
    d.record(20);
    expect(d.stallMs()).toBe(750);
    // The median, not the tail: a loaded machine's few slow calls stretch the deadline, not this...
    for (let i = 0; i < 195; i++) d.record(20);
    for (let i = 0; i < 3; i++) d.record(2_400);
    now += 300;
    expect(d.timeoutMs()).toBe(9_600);
    expect(d.stallMs()).toBe(750);
    // ...a provider slow as a rule moves it.
    for (let i = 0; i < 256; i++) d.record(400);
    now += 300;
    expect(d.p50()).toBe(400);
    expect(d.stallMs()).toBe(1_200);
  });

  it('forgets samples older than its window: after a long silence the full timeout applies again', () => {
    let now = 0;
    const d = new CallDeadlines(policy, { size: 16, maxAgeMs: 1_000, minSamples: 5, skipFirst: 0 }, () => now);
    for (let i = 0; i < 10; i++) d.record(50);
    expect(d.timeoutMs()).toBe(1_000);
    now += 2_000;
    expect(d.timeoutMs()).toBe(10_000);
  });

});

describe('completion window', () => {
  it('counts calls when they complete, so calls failing at a deadline longer than the window still open it', () => {
    let now = 0;
    const w = new CompletionWindow({ windowMs: 2_000, volumeThreshold: 3, errorThresholdPercentage: 50 }, () => now);
    // Fired at 0, failed at 10 s: opossum would see no fires in its window; this sees three failures.
    now = 10_000;
    w.record(false);
    w.record(false);
    expect(w.failing()).toBe(false);
    w.record(false);
    expect(w.failing()).toBe(true);
    // Half of them or fewer failing is not enough; the window forgets after 2 s.
    for (let i = 0; i < 3; i++) w.record(true);
    expect(w.failing()).toBe(false);
    now += 2_500;
    w.record(false);
    expect(w.failing()).toBe(false);
    // Weighed by messages: three failed calls of 100 against three successful calls of one.
    now += 5_000;
    for (let i = 0; i < 3; i++) w.record(true, 1);
    for (let i = 0; i < 3; i++) w.record(false, 100);
    expect(w.failing()).toBe(true);
  });
});

describe('settleWithin', () => {
  it("gives the client's outcome when it answers the cancellation, a GivenUp without outcomes when it does not", async () => {
    const c1 = new AbortController();
    const answering = new Promise<string>((resolve) => c1.signal.addEventListener('abort', () => resolve('reported')));
    c1.abort(new DeadlineExceeded(50));
    await expect(settleWithin(answering, c1.signal, 100)).resolves.toBe('reported');

    const c2 = new AbortController();
    const silent = new Promise<string>(() => {});
    const started = Date.now();
    const pending = settleWithin(silent, c2.signal, 50);
    c2.abort(new DeadlineExceeded(70));
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GivenUp);
    expect(err).toMatchObject({ timeoutMs: 70, outcomes: null, code: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(500);
  });
});
