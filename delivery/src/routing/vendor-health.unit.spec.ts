import { describe, expect, it } from 'vitest';
import { VendorHealth } from './vendor-health';

const options = { windowMs: 10_000, minFailures: 4, minIntegrations: 2, errorRate: 0.5, resetMs: 2_000 };

describe('vendor health', () => {
  const health = () => {
    let t = 0;
    const changes: string[] = [];
    const h = new VendorHealth('twilio|production', options, (s) => changes.push(s), () => t);
    return { h, changes, advance: (ms: number) => (t += ms) };
  };

  it('opens when the vendor fails for two integrations or more, not for one alone', () => {
    const { h, changes } = health();
    for (let i = 0; i < 10; i++) h.record('acme/own', false);
    expect(h.opened).toBe(false);
    h.record('globex/own', false);
    expect(h.opened).toBe(true);
    expect(changes).toEqual(['open']);
  });

  it('stays closed while most calls succeed, and forgets failures older than its window', () => {
    const { h, advance } = health();
    for (let i = 0; i < 3; i++) {
      h.record('a', false);
      h.record('b', true);
      h.record('c', true);
    }
    h.record('b', false);
    expect(h.opened).toBe(false);
    advance(11_000);
    h.record('a', false);
    h.record('b', false);
    expect(h.opened).toBe(false);
  });

  it('counts an integration\'s failures out of the window as they leave it, across thousands of calls', () => {
    const { h, advance } = health();
    // a's failures, then 5,000 successes over 5 s.
    for (let i = 0; i < 3; i++) h.record('a', false);
    for (let i = 0; i < 5_000; i++) {
      h.record('c', true);
      advance(1);
    }
    advance(10_000);
    // a's three failures and all but the last success have left the window: b's four failures
    // are one integration's.
    for (let i = 0; i < 4; i++) h.record('b', false);
    expect(h.opened).toBe(false);
    // Still in the window: the failures of two integrations, most of the calls now.
    h.record('a', false);
    expect(h.opened).toBe(true);
  });

  it('lets one probe through after its reset time, closing on success and opening again on failure', () => {
    const { h, changes, advance } = health();
    for (const i of ['a', 'b', 'a', 'b']) h.record(i, false);
    expect(h.opened).toBe(true);
    advance(2_000);
    expect(h.halfOpen).toBe(true);
    h.probe();
    expect(h.opened).toBe(true);
    h.record('c', false);
    expect(h.opened).toBe(true);
    advance(2_000);
    h.probe();
    h.record('c', true);
    expect(h.opened).toBe(false);
    expect(h.halfOpen).toBe(false);
    expect(changes).toEqual(['open', 'open', 'closed']);
  });
});
