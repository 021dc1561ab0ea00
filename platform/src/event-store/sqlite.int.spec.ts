import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { NewEvent } from './port';
import { eventStoreContract } from './contract';
import { openSqliteEventStore } from './sqlite';

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'es-')), 'events.db');
const ev = (type: string): NewEvent => ({ type, data: {}, metadata: { tenantId: 't', actor: 'a', requestId: 'r', at: '2026-01-01T00:00:00.000Z' } }) as NewEvent;

eventStoreContract('sqlite file', async () => {
  const file = tempFile();
  const store = openSqliteEventStore({ path: file });
  return { store, cleanup: () => store.close() };
});

eventStoreContract('sqlite in memory', async () => {
  const store = openSqliteEventStore({ path: ':memory:' });
  return { store, cleanup: () => store.close() };
});

describe('sqlite event store', () => {
  it('keeps events and revisions across a reopen', async () => {
    const file = tempFile();
    const first = openSqliteEventStore({ path: file });
    await first.appendToStream('s', [ev('A'), ev('B')]);
    await first.close();
    const second = openSqliteEventStore({ path: file });
    expect((await second.readStream('s')).map((e) => e.type)).toEqual(['A', 'B']);
    await expect(second.appendToStream('s', [ev('C')], { expectedRevision: 0 })).rejects.toMatchObject({ actual: 1 });
    await second.close();
  });

  it('lets a subscriber on another connection see appends made through the first (polling)', async () => {
    const file = tempFile();
    const writer = openSqliteEventStore({ path: file });
    const reader = openSqliteEventStore({ path: file });
    const seen: string[] = [];
    const sub = reader.subscribe({ after: 0, handler: async (events) => void seen.push(...events.map((e) => e.type)) });
    const r = await writer.appendToStream('s', [ev('A'), ev('B')]);
    await sub.caughtUp(r.lastPosition);
    expect(seen).toEqual(['A', 'B']);
    await sub.stop();
    await Promise.all([writer.close(), reader.close()]);
  });

  it('stops its subscriptions when closed', async () => {
    const store = openSqliteEventStore({ path: tempFile() });
    let calls = 0;
    const errors: unknown[] = [];
    store.subscribe({ after: 0, handler: async () => void calls++, onError: (e) => errors.push(e) });
    await store.appendToStream('s', [ev('A')]);
    await store.close();
    expect(errors).toEqual([]);
  });
});
