import { describe, expect, it } from 'vitest';
import type { EventStore } from '#platform/event-store/port';
import type { RecordedEvent } from '#schema/events';
import { StreamCache } from './handler';

type Counter = Readonly<{ type: 'Counted'; data: { n: number } }>;

/** A store of a few streams that counts the events it hands out. */
const storeOf = (existing: readonly string[]) => {
  const read = { events: 0, calls: 0 };
  const store = {
    readStream: async (name: string, o?: { fromRevision?: number }) => {
      read.calls++;
      if (!existing.includes(name)) return [];
      const from = o?.fromRevision ?? 0;
      const all = Array.from({ length: 3 }, (_, revision) => ({ type: 'Counted', data: { n: revision }, streamName: name, revision, position: revision + 1, metadata: { tenantId: 't', actor: 'a', requestId: 'r', at: '' } }));
      const out = all.filter((e) => e.revision >= from);
      read.events += out.length;
      return out as unknown as RecordedEvent[];
    },
  } as unknown as EventStore;
  return { store, read };
};

const decider = { initialState: () => 0, evolve: (s: number, e: Counter) => s + e.data.n + 1 };

describe('StreamCache', () => {
  it('does not cache streams that do not exist, so junk names cannot evict real entries', async () => {
    const { store, read } = storeOf(['tenant-acme', 'tenant-beta']);
    const cache = new StreamCache<Counter, number>(store, decider as never, 2);
    expect((await cache.load('tenant-acme')).revision).toBe(2);
    expect((await cache.load('tenant-beta')).revision).toBe(2);
    const before = read.events;
    for (let i = 0; i < 1_000; i++) expect((await cache.load(`tenant-junk-${i}`)).revision).toBe(-1);
    expect(cache.size).toBe(2);
    // Both real tenants are still cached: refreshing them reads nothing after their revision.
    await cache.load('tenant-acme');
    await cache.load('tenant-beta');
    expect(read.events).toBe(before);
  });

  it('evicts the least recently used stream when full', async () => {
    const { store, read } = storeOf(['a', 'b', 'c']);
    const cache = new StreamCache<Counter, number>(store, decider as never, 2);
    await cache.load('a');
    await cache.load('b');
    await cache.load('a'); // a is now the most recently used
    await cache.load('c'); // evicts b
    const before = read.events;
    await cache.load('a');
    expect(read.events).toBe(before);
    await cache.load('b');
    expect(read.events).toBe(before + 3);
  });

  it('takes the cached state without a read only when a read confirmed it within maxAgeMs', async () => {
    const { store, read } = storeOf(['tenant-acme']);
    let t = 0;
    const cache = new StreamCache<Counter, number>(store, decider as never, 10, () => t);
    await cache.load('tenant-acme');
    t = 40;
    expect((await cache.load('tenant-acme', { maxAgeMs: 50 })).revision).toBe(2);
    expect(read.calls).toBe(1);
    // Without maxAgeMs (authentication) every load reads; the read confirms the entry again.
    await cache.load('tenant-acme');
    expect(read.calls).toBe(2);
    t = 80;
    await cache.load('tenant-acme', { maxAgeMs: 50 });
    expect(read.calls).toBe(2);
    t = 131;
    await cache.load('tenant-acme', { maxAgeMs: 50 });
    expect(read.calls).toBe(3);
    // A stream that does not exist is never taken from the cache.
    await cache.load('tenant-none', { maxAgeMs: 50 });
    await cache.load('tenant-none', { maxAgeMs: 50 });
    expect(read.calls).toBe(5);
  });
});
