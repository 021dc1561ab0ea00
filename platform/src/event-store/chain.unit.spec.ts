import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from './event';
import { canonical, ChainVerifier, eventHash, GENESIS } from './chain';

const chain = (n: number): RecordedEvent[] => {
  const out: RecordedEvent[] = [];
  let prev = GENESIS;
  for (let i = 0; i < n; i++) {
    const e = { type: 'UserRenamed', data: { userId: `u${i}`, name: `pd1.x${i}` }, streamName: `user-t.u${i}`, revision: 0, position: i + 1, metadata: { tenantId: 't', actor: 'k', requestId: 'r', at: 'now', prevHash: prev } } as unknown as RecordedEvent;
    prev = eventHash(e);
    out.push(e);
  }
  return out;
};
const verify = (events: RecordedEvent[], head?: string) => {
  const v = new ChainVerifier('t');
  for (const e of events) v.add(e);
  return v.report(head);
};

describe('hash chain', () => {
  it('canonical JSON ignores key order', () => {
    expect(canonical({ b: 1, a: { d: [1, { f: 2, e: 3 }], c: null } })).toBe(canonical({ a: { c: null, d: [1, { e: 3, f: 2 }] }, b: 1 }));
  });
  it('accepts an intact chain, with its head', () => {
    const events = chain(5);
    expect(verify(events, eventHash(events[4]!))).toMatchObject({ ok: true, checked: 5 });
  });
  it('names an edited event', () => {
    const events = chain(5);
    const edited = { ...events[2]!, data: { ...events[2]!.data, name: 'pd1.tampered' } } as RecordedEvent;
    const r = verify([events[0]!, events[1]!, edited, events[3]!, events[4]!]);
    expect(r.ok).toBe(false);
    expect(r.firstBreak).toMatchObject({ position: 3, streamName: 'user-t.u2' });
  });
  it('notices a deletion', () => {
    const events = chain(5);
    expect(verify([events[0]!, events[1]!, events[3]!, events[4]!]).firstBreak).toMatchObject({ position: 2 });
    expect(verify(events.slice(1)).firstBreak?.reason).toMatch(/first event/);
  });
  it('notices an edit of the last event through the recorded head', () => {
    const events = chain(3);
    const head = eventHash(events[2]!);
    const edited = { ...events[2]!, type: 'OptInChanged' } as RecordedEvent;
    expect(verify([events[0]!, events[1]!, edited], head).firstBreak).toMatchObject({ position: 3 });
    expect(verify([events[0]!, events[1]!, edited]).ok).toBe(true);
  });
});
