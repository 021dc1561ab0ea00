import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import type { EventStore, NewEvent, ReadAllOptions } from '#platform/event-store/port';
import { Health } from '#platform/health';
import { LiveHub, type LiveEvent } from './hub';

const ev = (i: number): NewEvent =>
  ({ type: 'DeliveryTested', data: { notificationId: 'n1', userId: `u${i}` }, metadata: { tenantId: 't', actor: 'a', requestId: 'r', at: '2026-01-01T00:00:00.000Z' } }) as NewEvent;

const next = async (it: AsyncIterableIterator<LiveEvent>, ms = 5_000): Promise<LiveEvent> => {
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no live event')), ms));
  return (await Promise.race([it.next(), timeout])).value as LiveEvent;
};

describe('LiveHub', () => {
  const stops: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });

  const open = async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-hub-'));
    const store = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const readStore = openSqliteReadStore({ path: path.join(dir, 'read.db') });
    // Counts the events the hub reads back from the log.
    let read = 0;
    const counted: EventStore = {
      ...store,
      subscribe: (o) => store.subscribe({ ...o, handler: async (events) => ((read += events.length), o.handler(events)) }),
      readAll: async (o: ReadAllOptions) => store.readAll(o),
    };
    const hub = new LiveHub({ eventStore: counted, readStore, logger: pino({ level: 'silent' }), health: new Health() });
    await hub.start();
    stops.push(async () => {
      await hub.stop();
      await store.close();
      await readStore.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    return { store, hub, read: () => read };
  };

  it('reads no event while nobody watches, and hands a new watcher every event appended after it subscribed', async () => {
    const { store, hub, read } = await open();
    for (let i = 0; i < 50; i++) await store.appendToStream(`s-${i}`, [ev(i)]);
    await new Promise((r) => setTimeout(r, 300));
    expect(read()).toBe(0);

    const events = hub.watchEvents('t', {});
    // Appended at once, before the hub has switched to reading every event: not lost.
    await store.appendToStream('s-after', [ev(1000)]);
    const first = await next(events);
    expect(first.userId).toBe('u1000');
    await store.appendToStream('s-later', [ev(1001)]);
    expect((await next(events)).userId).toBe('u1001');
    // Only what came after the watcher: the 50 idle events were never read.
    expect(read()).toBe(2);
    await events.return?.();
  });
});
