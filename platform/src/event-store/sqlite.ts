import Database from 'better-sqlite3';
import { EventEmitter } from 'node:events';
import { eventHash, GENESIS } from './chain';
import type { AnyEvent, RecordedEvent } from '../../../schema/src/events';
import {
  ConcurrencyError,
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type StreamAppend,
  type SubscribeOptions,
  type Subscription,
} from './port';

type Row = { position: number; stream: string; revision: number; type: string; data: string; metadata: string };

const toRecorded = (r: Row): RecordedEvent<AnyEvent> =>
  ({
    type: r.type,
    data: JSON.parse(r.data),
    metadata: JSON.parse(r.metadata),
    streamName: r.stream,
    revision: r.revision,
    position: r.position,
  }) as RecordedEvent<AnyEvent>;

const POLL_MS = 200;

/**
 * The embedded event store: one SQLite file in WAL mode. SQLite has one writer at a time, so
 * positions (the rowid) are assigned in commit order and a reader never sees a gap fill in later.
 */
export const openSqliteEventStore = (options: Readonly<{ path: string }>): EventStore => {
  const db = new Database(options.path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(`
    CREATE TABLE IF NOT EXISTS events (
      position INTEGER PRIMARY KEY AUTOINCREMENT,
      stream TEXT NOT NULL,
      revision INTEGER NOT NULL,
      tenant_id TEXT NOT NULL,
      type TEXT NOT NULL,
      data TEXT NOT NULL,
      metadata TEXT NOT NULL,
      UNIQUE (stream, revision)
    );
    CREATE INDEX IF NOT EXISTS events_type ON events (type, position);
    CREATE INDEX IF NOT EXISTS events_tenant ON events (tenant_id, position);
    CREATE TABLE IF NOT EXISTS streams (stream TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS chain_heads (tenant_id TEXT PRIMARY KEY, hash TEXT NOT NULL) WITHOUT ROWID;
  `);

  const currentRevision = db.prepare<[string], { revision: number }>('SELECT revision FROM streams WHERE stream = ?');
  const insertEvent = db.prepare('INSERT INTO events (stream, revision, tenant_id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)');
  const getHead = db.prepare<[string], { hash: string }>('SELECT hash FROM chain_heads WHERE tenant_id = ?');
  const putHead = db.prepare('INSERT INTO chain_heads (tenant_id, hash) VALUES (?, ?) ON CONFLICT (tenant_id) DO UPDATE SET hash = excluded.hash');
  const tenantsStmt = db.prepare<[], { tenant_id: string }>('SELECT tenant_id FROM chain_heads ORDER BY tenant_id');
  const readTenantStmt = db.prepare<[string, number, number], Row>('SELECT * FROM events WHERE tenant_id = ? AND position > ? ORDER BY position LIMIT ?');
  const upsertStream = db.prepare(
    'INSERT INTO streams (stream, revision) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision',
  );
  const readStreamStmt = db.prepare<[string, number, number], Row>(
    'SELECT * FROM events WHERE stream = ? AND revision >= ? ORDER BY revision LIMIT ?',
  );
  const readAllStmt = db.prepare<[number, number], Row>('SELECT * FROM events WHERE position > ? ORDER BY position LIMIT ?');
  const headStmt = db.prepare<[], { head: number | null }>('SELECT MAX(position) AS head FROM events');
  const appended = new EventEmitter();
  appended.setMaxListeners(0);
  let closed = false;

  /** Chain heads touched by the transaction in progress; written once at its end. */
  type Heads = Map<string, string>;

  const appendOne = (streamName: string, events: readonly NewEvent[], expected: ExpectedRevision, heads: Heads): AppendResult => {
    const actual = currentRevision.get(streamName)?.revision ?? -1;
    const ok =
      expected === 'any' ||
      (expected === 'no_stream' && actual === -1) ||
      (expected === 'stream_exists' && actual >= 0) ||
      (typeof expected === 'number' && expected === actual);
    if (!ok) throw new ConcurrencyError(streamName, expected, actual);
    let revision = actual;
    let position = 0;
    for (const e of events) {
      revision++;
      const tenantId = e.metadata.tenantId;
      const prevHash = heads.get(tenantId) ?? getHead.get(tenantId)?.hash ?? GENESIS;
      const metadata = { ...e.metadata, prevHash };
      heads.set(tenantId, eventHash({ streamName, revision, type: e.type, data: e.data, metadata }));
      position = Number(insertEvent.run(streamName, revision, tenantId, e.type, JSON.stringify(e.data), JSON.stringify(metadata)).lastInsertRowid);
    }
    if (events.length > 0) upsertStream.run(streamName, revision);
    return { nextExpectedRevision: revision, lastPosition: position };
  };

  const writeHeads = (heads: Heads): void => {
    for (const [tenantId, hash] of heads) putHead.run(tenantId, hash);
  };

  const appendSingle = db.transaction((streamName: string, events: readonly NewEvent[], expected: ExpectedRevision) => {
    const heads: Heads = new Map();
    const result = appendOne(streamName, events, expected, heads);
    writeHeads(heads);
    return result;
  });

  const appendMany = db.transaction((appends: readonly StreamAppend[]) => {
    const heads: Heads = new Map();
    let last = 0;
    for (const a of appends) {
      const r = appendOne(a.streamName, a.events, a.expectedRevision, heads);
      if (a.events.length > 0) last = r.lastPosition;
    }
    writeHeads(heads);
    return last;
  });

  const readAllSync = (o: ReadAllOptions): RecordedEvent<AnyEvent>[] => {
    if (o.types?.length === 0) return [];
    if (!o.types) {
      const rows = o.tenantId === undefined ? readAllStmt.all(o.after, o.maxCount) : readTenantStmt.all(o.tenantId, o.after, o.maxCount);
      return rows.map(toRecorded);
    }
    const tenant = o.tenantId === undefined ? '' : 'tenant_id = ? AND ';
    const sql = `SELECT * FROM events WHERE ${tenant}position > ? AND type IN (${o.types.map(() => '?').join(', ')}) ORDER BY position LIMIT ?`;
    return db
      .prepare<unknown[], Row>(sql)
      .all(...(o.tenantId === undefined ? [] : [o.tenantId]), o.after, ...o.types, o.maxCount)
      .map(toRecorded);
  };

  const head = (): number => headStmt.get()?.head ?? 0;

  const subscriptions = new Set<Subscription>();

  const subscribe = (o: SubscribeOptions): Subscription => {
    const batchSize = o.batchSize ?? 500;
    let after = o.after;
    let delivered = o.after;
    let stopped = false;
    let wake: (() => void) | null = null;
    const waiters: { position: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
    const onAppend = () => wake?.();
    appended.on('append', onAppend);

    const settleWaiters = () => {
      for (let i = waiters.length - 1; i >= 0; i--) {
        if (waiters[i]!.position <= delivered) waiters.splice(i, 1)[0]!.resolve();
      }
    };

    const loop = (async () => {
      try {
        while (!stopped && !closed) {
          // Read the head first: with a type filter, everything up to it has then been seen.
          const seenUpTo = o.types ? head() : 0;
          const events = readAllSync({ after, maxCount: batchSize, ...(o.types ? { types: o.types } : {}) });
          if (events.length > 0) {
            await o.handler(events);
            after = events[events.length - 1]!.position;
          }
          if (events.length < batchSize) after = Math.max(after, seenUpTo);
          delivered = after;
          settleWaiters();
          if (events.length === batchSize) continue;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = null;
        }
      } catch (e) {
        stopped = true;
        for (const w of waiters.splice(0)) w.reject(e);
        o.onError?.(e);
      } finally {
        appended.off('append', onAppend);
        for (const w of waiters.splice(0)) w.reject(new Error('subscription stopped'));
      }
    })();

    const subscription: Subscription = {
      stop: async () => {
        stopped = true;
        wake?.();
        await loop;
        subscriptions.delete(subscription);
      },
      caughtUp: (position: number) =>
        position <= delivered
          ? Promise.resolve()
          : stopped
            ? Promise.reject(new Error('subscription stopped'))
            : new Promise<void>((resolve, reject) => waiters.push({ position, resolve, reject })),
    };
    subscriptions.add(subscription);
    return subscription;
  };

  return {
    appendToStream: async (streamName, events, opts = {}) => {
      const result = appendSingle(streamName, events, opts.expectedRevision ?? 'any');
      if (events.length > 0) appended.emit('append');
      return result;
    },
    appendToStreams: async (appends) => {
      const lastPosition = appendMany(appends);
      appended.emit('append');
      return { lastPosition };
    },
    readStream: async (streamName, opts = {}) =>
      readStreamStmt.all(streamName, opts.fromRevision ?? 0, opts.maxCount ?? Number.MAX_SAFE_INTEGER).map(toRecorded),
    readAll: async (o) => readAllSync(o),
    headPosition: async () => head(),
    chainHead: async (tenantId) => getHead.get(tenantId)?.hash ?? null,
    tenants: async () => tenantsStmt.all().map((r) => r.tenant_id),
    subscribe,
    close: async () => {
      if (closed) return;
      await Promise.all([...subscriptions].map((sub) => sub.stop()));
      closed = true;
      db.close();
    },
  };
};
