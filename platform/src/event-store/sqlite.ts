import path from 'node:path';
import Database from 'better-sqlite3';
import { deferCheckpoints } from '../sqlite-checkpointer';
import { SYNC_BUSY_MS, whenWritable } from '../sqlite-writable';
import { EventEmitter } from 'node:events';
import { pollingSubscription } from './polling';
import { canonical, eventHashOfCanonical, GENESIS, headMac, type ChainHead, type ChainKeys } from './chain';
import type { AnyEvent, RecordedEvent } from './event';
import {
  ConcurrencyError,
  revisionMatches,
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

/** How often a subscriber looks for appends made by other processes on the same file. */
const POLL_MS = 200;

/**
 * The embedded event store: one SQLite file in WAL mode. Every append takes the write lock up
 * front (BEGIN IMMEDIATE), so the expected-revision check and the insert see the same state even
 * when another process writes to the file; and as SQLite has one writer at a time, positions
 * (AUTOINCREMENT, never reused) are assigned in commit order: a reader never sees a gap fill in.
 */
export const openSqliteEventStore = (
  options: Readonly<{
    path: string;
    chainKeys?: ChainKeys | null;
    /**
     * Whether this connection's commits also checkpoint the WAL into the file (SQLite's default).
     * Off where a checkpointer thread does it (startWalCheckpointer): a checkpoint otherwise
     * lands on whichever commit crosses the threshold, a request's or a fan-out batch's.
     */
    checkpoints?: boolean;
  }>,
): EventStore => {
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
  // Heads record the last position and the tenant's event count (and a MAC) since the audit
  // issue; older files get the columns, and their heads the values the log gives them now.
  const headColumns = () => new Set((db.pragma('table_info(chain_heads)') as { name: string }[]).map((c) => c.name));
  if (!headColumns().has('events')) {
    db.transaction(() => {
      // Checked again under the write lock: another process may have migrated the file meanwhile.
      if (headColumns().has('events')) return;
      db.exec('ALTER TABLE chain_heads ADD COLUMN position INTEGER; ALTER TABLE chain_heads ADD COLUMN events INTEGER; ALTER TABLE chain_heads ADD COLUMN mac TEXT;');
      db.exec(`UPDATE chain_heads SET
        position = (SELECT MAX(position) FROM events WHERE events.tenant_id = chain_heads.tenant_id),
        events = (SELECT COUNT(*) FROM events WHERE events.tenant_id = chain_heads.tenant_id)`);
    }).immediate();
  }

  // From here on a busy file is waited for without holding the thread (whenWritable): another
  // thread's or process's transaction then delays only the append that needs the lock.
  db.pragma(`busy_timeout = ${SYNC_BUSY_MS}`);
  if (options.checkpoints === false) deferCheckpoints(db);

  const currentRevision = db.prepare<[string], { revision: number }>('SELECT revision FROM streams WHERE stream = ?');
  const insertEvent = db.prepare<[string, number, string, string, string, string]>(
    'INSERT INTO events (stream, revision, tenant_id, type, data, metadata) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const upsertStream = db.prepare<[string, number]>(
    'INSERT INTO streams (stream, revision) VALUES (?, ?) ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision',
  );
  type HeadRow = { hash: string; position: number | null; events: number | null; mac: string | null };
  const getHead = db.prepare<[string], HeadRow>('SELECT hash, position, events, mac FROM chain_heads WHERE tenant_id = ?');
  const countTenant = db.prepare<[string], { events: number }>('SELECT COUNT(*) AS events FROM events WHERE tenant_id = ?');
  const putHead = db.prepare<[string, string, number, number, string | null]>(
    `INSERT INTO chain_heads (tenant_id, hash, position, events, mac) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (tenant_id) DO UPDATE SET hash = excluded.hash, position = excluded.position, events = excluded.events, mac = excluded.mac`,
  );
  const setMac = db.prepare<[string | null, string]>('UPDATE chain_heads SET mac = ? WHERE tenant_id = ?');
  // Tenants with events (a skip scan of the tenant index: one lookup per tenant, not per event)
  // and tenants with a head: a deleted head or deleted events must not hide a tenant from verify.
  const tenantsStmt = db.prepare<[], { tenant_id: string }>(`
    WITH RECURSIVE t(tenant_id) AS (
      SELECT MIN(tenant_id) FROM events
      UNION ALL
      SELECT (SELECT MIN(tenant_id) FROM events WHERE events.tenant_id > t.tenant_id) FROM t WHERE t.tenant_id IS NOT NULL
    )
    SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL
    UNION SELECT tenant_id FROM chain_heads
    ORDER BY tenant_id`);
  /** readStream statements by the number of types filtered on (0: none), prepared once each. */
  const readStreamStatements = new Map<number, Database.Statement<unknown[], Row>>();
  const readStreamStmt = (types: number): Database.Statement<unknown[], Row> => {
    let s = readStreamStatements.get(types);
    if (!s) {
      const byType = types === 0 ? '' : ` AND type IN (${Array.from({ length: types }, () => '?').join(', ')})`;
      s = db.prepare<unknown[], Row>(`SELECT * FROM events WHERE stream = ? AND revision >= ?${byType} ORDER BY revision LIMIT ?`);
      readStreamStatements.set(types, s);
    }
    return s;
  };
  const headStmt = db.prepare<[], { head: number | null }>('SELECT MAX(position) AS head FROM events');

  /** readAll statements by shape (tenant or not, number of types), prepared once each. */
  const readAllStatements = new Map<string, Database.Statement<unknown[], Row>>();
  const readAllStmt = (tenant: boolean, types: number | null): Database.Statement<unknown[], Row> => {
    const key = `${tenant}:${types}`;
    let s = readAllStatements.get(key);
    if (!s) {
      const where = [
        ...(tenant ? ['tenant_id = ?'] : []),
        'position > ?',
        ...(types === null ? [] : [`type IN (${Array.from({ length: types }, () => '?').join(', ')})`]),
      ];
      s = db.prepare<unknown[], Row>(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY position LIMIT ?`);
      readAllStatements.set(key, s);
    }
    return s;
  };

  const appended = new EventEmitter();
  appended.setMaxListeners(0);
  let closed = false;
  // Other threads of this process that opened the same file hear of appends at once; other
  // processes by polling.
  const threads = options.path === ':memory:' ? null : new BroadcastChannel(`notify:sqlite-events:${path.resolve(options.path)}`);
  if (threads) {
    threads.onmessage = () => appended.emit('append');
    (threads as unknown as { unref?: () => void }).unref?.();
  }
  // Coalesced: a busy writer wakes the other threads' subscriptions every few milliseconds, not per append.
  let announcing = false;
  const announce = () => {
    appended.emit('append');
    if (!threads || announcing) return;
    announcing = true;
    setTimeout(() => {
      announcing = false;
      if (!closed) threads.postMessage(0);
    }, 5).unref();
  };

  /** Chain heads touched by the transaction in progress; written once at its end. */
  type Head = { hash: string; position: number; events: number };
  type Heads = Map<string, Head>;

  const storedHead = (tenantId: string): Head => {
    const row = getHead.get(tenantId);
    if (!row) return { hash: GENESIS, position: 0, events: 0 };
    // A head written by an older version has no count: the log gives it.
    return { hash: row.hash, position: row.position ?? 0, events: row.events ?? countTenant.get(tenantId)!.events };
  };

  const appendOne = (streamName: string, events: readonly NewEvent[], expected: ExpectedRevision, heads: Heads): AppendResult => {
    const actual = currentRevision.get(streamName)?.revision ?? -1;
    if (!revisionMatches(expected, actual)) throw new ConcurrencyError(streamName, expected, actual);
    let revision = actual;
    let position = 0;
    for (const e of events) {
      revision++;
      const tenantId = e.metadata.tenantId;
      if (typeof tenantId !== 'string') throw new Error(`event ${e.type} for ${streamName} has no metadata.tenantId`);
      const head = heads.get(tenantId) ?? storedHead(tenantId);
      // The canonical text is what is stored, so reading the event back reproduces its hash.
      const data = canonical(e.data);
      const metadata = canonical({ ...e.metadata, prevHash: head.hash });
      position = Number(insertEvent.run(streamName, revision, tenantId, e.type, data, metadata).lastInsertRowid);
      heads.set(tenantId, { hash: eventHashOfCanonical(streamName, revision, e.type, data, metadata), position, events: head.events + 1 });
    }
    if (events.length > 0) upsertStream.run(streamName, revision);
    return { nextExpectedRevision: revision, lastPosition: position };
  };

  const writeHeads = (heads: Heads): void => {
    for (const [tenantId, h] of heads) putHead.run(tenantId, h.hash, h.position, h.events, headMac(options.chainKeys, tenantId, h));
  };

  const authenticate = db.transaction((tenantId: string, expected: ChainHead): boolean => {
    const row = getHead.get(tenantId);
    if (!row || row.hash !== expected.hash || row.position !== expected.position || row.events !== expected.events || row.mac !== expected.mac) return false;
    setMac.run(headMac(options.chainKeys, tenantId, row), tenantId);
    return true;
  });

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
    const tenant = o.tenantId !== undefined;
    const params: unknown[] = [...(tenant ? [o.tenantId] : []), o.after, ...(o.types ?? []), o.maxCount];
    return readAllStmt(tenant, o.types ? o.types.length : null)
      .all(...params)
      .map(toRecorded);
  };

  const head = (): number => headStmt.get()?.head ?? 0;

  const subscriptions = new Set<Subscription>();

  const subscribe = (o: SubscribeOptions): Subscription => {
    const subscription = pollingSubscription(
      { head: head, readAll: readAllSync, appended, closed: () => closed, pollMs: POLL_MS },
      o,
      (ended) => subscriptions.delete(ended),
    );
    subscriptions.add(subscription);
    return subscription;
  };

  const ensureOpen = () => {
    if (closed) throw new Error('event store is closed');
  };

  return {
    appendToStream: async (streamName, events, opts = {}) => {
      ensureOpen();
      const result = await whenWritable(() => appendSingle.immediate(streamName, events, opts.expectedRevision ?? 'any'));
      if (events.length > 0) announce();
      return result;
    },
    appendToStreams: async (appends) => {
      ensureOpen();
      const lastPosition = await whenWritable(() => appendMany.immediate(appends));
      if (appends.some((a) => a.events.length > 0)) announce();
      return { lastPosition };
    },
    readStream: async (streamName, opts = {}) => {
      const types = opts.types ?? [];
      if (opts.types?.length === 0) return [];
      return readStreamStmt(types.length)
        .all(streamName, opts.fromRevision ?? 0, ...types, opts.maxCount ?? Number.MAX_SAFE_INTEGER)
        .map(toRecorded);
    },
    readAll: async (o) => readAllSync(o),
    headPosition: async () => head(),
    chainHead: async (tenantId) => {
      const row = getHead.get(tenantId);
      return row ? { hash: row.hash, position: row.position, events: row.events, mac: row.mac } : null;
    },
    authenticateChainHead: async (tenantId, expected) => {
      ensureOpen();
      if (!options.chainKeys) throw new Error('this event store has no chain keys to authenticate heads with');
      return whenWritable(() => authenticate.immediate(tenantId, expected));
    },
    tenants: async () => tenantsStmt.all().map((r) => r.tenant_id),
    subscribe,
    close: async () => {
      if (closed) return;
      await Promise.all([...subscriptions].map((sub) => sub.stop()));
      closed = true;
      threads?.close();
      db.close();
    },
  };
};
