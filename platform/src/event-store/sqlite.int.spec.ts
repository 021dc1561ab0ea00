import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { ChainVerifier } from './chain';
import type { NewEvent } from './port';
import { eventStoreContract } from './contract';
import { openSqliteEventStore } from './sqlite';

const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'es-')), 'events.db');
const ev = (type: string, data: object = {}): NewEvent => ({ type, data, metadata: { tenantId: 't', actor: 'a', requestId: 'r', at: '2026-01-01T00:00:00.000Z' } }) as NewEvent;
const until = async (check: () => boolean, ms = 5000): Promise<void> => {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 2));
  }
};

/** Another writer on the same file (as another process would be): holds the write lock, appends, commits. */
const WRITER = `
const { workerData, parentPort } = require('node:worker_threads');
const Database = require(workerData.driver);
const db = new Database(workerData.file);
db.pragma('busy_timeout = 5000');
db.exec('BEGIN IMMEDIATE');
const revision = db.prepare('SELECT revision FROM streams WHERE stream = ?').get(workerData.stream).revision + 1;
db.prepare("INSERT INTO events (stream, revision, tenant_id, type, data, metadata) VALUES (?, ?, 't', 'Other', '{}', '{}')").run(workerData.stream, revision);
db.prepare('UPDATE streams SET revision = ? WHERE stream = ?').run(revision, workerData.stream);
parentPort.postMessage('locked');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, workerData.holdMs);
db.exec('COMMIT');
db.close();
`;

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
    await second.appendToStream('s', [ev('C')], { expectedRevision: 1 });
    const verifier = new ChainVerifier('t');
    for (const e of await second.readAll({ after: 0, maxCount: 100, tenantId: 't' })) verifier.add(e);
    expect(verifier.report(await second.chainHead('t'))).toMatchObject({ ok: true, checked: 3 });
    await second.close();
  });

  it('gives heads written before counts their count and position when it opens an older file, and keeps chaining', async () => {
    const file = tempFile();
    const first = openSqliteEventStore({ path: file });
    await first.appendToStream('s', [ev('A'), ev('B')]);
    await first.close();
    // The file as an older version left it: heads with a hash only.
    const db = new Database(file);
    db.exec('ALTER TABLE chain_heads DROP COLUMN mac; ALTER TABLE chain_heads DROP COLUMN events; ALTER TABLE chain_heads DROP COLUMN position;');
    db.close();
    const second = openSqliteEventStore({ path: file });
    expect(await second.chainHead('t')).toMatchObject({ position: 2, events: 2, mac: null });
    await second.appendToStream('s', [ev('C')]);
    expect(await second.chainHead('t')).toMatchObject({ position: 3, events: 3 });
    const verifier = new ChainVerifier('t');
    for (const e of await second.readAll({ after: 0, maxCount: 100, tenantId: 't' })) verifier.add(e);
    expect(verifier.report(await second.chainHead('t'))).toMatchObject({ ok: true, checked: 3 });
    await second.close();
  });

  it('reports 0 as the head of an empty log, then the last position', async () => {
    const store = openSqliteEventStore({ path: tempFile() });
    expect(await store.headPosition()).toBe(0);
    const r = await store.appendToStreams([
      { streamName: 'a', events: [ev('A')], expectedRevision: 'no_stream' },
      { streamName: 'b', events: [ev('B'), ev('C')], expectedRevision: 'no_stream' },
    ]);
    expect(await store.headPosition()).toBe(r.lastPosition);
    expect((await store.readAll({ after: 0, maxCount: 10 })).map((e) => e.position)).toEqual([1, 2, 3]);
    await store.close();
  });

  it('stores the canonical JSON it hashes, so an event read back verifies (key order, dates)', async () => {
    const store = openSqliteEventStore({ path: ':memory:' });
    await store.appendToStream('s', [ev('A', { z: 1, a: { y: [new Date(0)], b: undefined } })]);
    const [e] = await store.readStream('s');
    expect(e!.data).toEqual({ a: { y: ['1970-01-01T00:00:00.000Z'] }, z: 1 });
    const verifier = new ChainVerifier('t');
    verifier.add(e!);
    expect(verifier.report(await store.chainHead('t'))).toMatchObject({ ok: true, checked: 1 });
    await store.close();
  });

  it('checks the expected revision under the write lock, even against a writer on another connection', async () => {
    const file = tempFile();
    const store = openSqliteEventStore({ path: file });
    await store.appendToStream('s', [ev('A')]);
    const worker = new Worker(WRITER, { eval: true, workerData: { driver: require.resolve('better-sqlite3'), file, stream: 's', holdMs: 300 } });
    const exited = new Promise((resolve, reject) => worker.on('exit', resolve).on('error', reject));
    await new Promise((resolve) => worker.once('message', resolve));
    // The other writer holds the lock and will make the stream's revision 1: this append must
    // wait for it and then fail the check, not read revision 0 and then fail to write.
    const e = await store.appendToStream('s', [ev('B')], { expectedRevision: 0 }).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'ConcurrencyError', expected: 0, actual: 1 });
    await exited;
    await store.appendToStream('s', [ev('C')], { expectedRevision: 1 });
    expect((await store.readStream('s')).map((x) => x.type)).toEqual(['A', 'Other', 'C']);
    await store.close();
  });

  it('wakes its own subscribers at once, also for appends made while the handler was busy', async () => {
    const store = openSqliteEventStore({ path: tempFile() });
    const seenAt = new Map<string, number>();
    let release: () => void = () => {};
    const sub = store.subscribe({
      after: 0,
      handler: async (events) => {
        for (const e of events) seenAt.set(e.type, Date.now());
        if (events.some((e) => (e.type as string) === 'A')) await new Promise<void>((r) => (release = r));
      },
    });
    // Let the subscriber fall asleep on its poll timer (200 ms) first.
    await new Promise((r) => setTimeout(r, 10));
    const appendedA = Date.now();
    await store.appendToStream('s', [ev('A')]);
    await until(() => seenAt.has('A'));
    expect(seenAt.get('A')! - appendedA).toBeLessThan(120);
    const b = await store.appendToStream('s', [ev('B')]);
    await new Promise((r) => setTimeout(r, 10));
    const released = Date.now();
    release();
    await sub.caughtUp(b.lastPosition);
    expect(Date.now() - released).toBeLessThan(120);
    await sub.stop();
    await store.close();
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
