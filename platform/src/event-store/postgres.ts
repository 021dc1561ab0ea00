import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { pollingSubscription } from './polling';
import { canonical, eventHashOfCanonical, GENESIS, headMac, type ChainKeys } from './chain';
import type { AnyEvent, RecordedEvent } from './event';
import {
  ConcurrencyError,
  revisionMatches,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type StreamAppend,
  type SubscribeOptions,
  type Subscription,
} from './port';

/** bigint columns arrive as strings: converted with Number (positions stay below 2^53). */
type Row = { position: string; stream: string; revision: string; type: string; data: string; metadata: string };

const toRecorded = (r: Row): RecordedEvent<AnyEvent> =>
  ({
    type: r.type,
    data: JSON.parse(r.data),
    metadata: JSON.parse(r.metadata),
    streamName: r.stream,
    revision: Number(r.revision),
    position: Number(r.position),
  }) as RecordedEvent<AnyEvent>;

/** Fallback poll, for when a notification is lost (LISTEN connection down, reconnecting). */
const POLL_MS = 200;
const LISTEN_RETRY_MS = 1000;

/** Advisory lock namespaces (first key); the second key is derived from the schema name. */
const DDL_LOCK = 0x6e6f7401;
const WRITE_LOCK = 0x6e6f7402;

/** Short enough that `<schema>_appended` stays a valid notification channel (63 bytes). */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

const EVENT_COLUMNS = 'position, stream, revision, type, data, metadata';

/**
 * The event store on PostgreSQL. Every append transaction first takes one transaction-scoped
 * advisory lock per schema, then assigns positions as max + 1 and commits: appends are
 * serialized, so positions are dense and become visible in order, and a subscriber reading
 * `position > n` never sees a gap fill in later (PostgreSQL releases the lock only after the
 * commit is visible). The price is one writer at a time, as with SQLite: throughput comes from
 * batching (one multi-row statement per append, four round trips per transaction), not from
 * parallel writers. A per-row sequence without the lock would let a later position commit
 * before an earlier one, and a subscriber would skip the earlier one forever.
 */
export const openPostgresEventStore = async (
  options: Readonly<{ connectionString: string; schema?: string; poolSize?: number; chainKeys?: ChainKeys | null }>,
): Promise<EventStore> => {
  const schema = options.schema ?? 'public';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`invalid event store schema name: ${schema}`);
  const s = `"${schema}"`;
  const channel = `${schema}_appended`;
  const schemaKey = createHash('sha256').update(schema).digest().readInt32BE(0);

  const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolSize ?? 10 });
  // An idle client that loses its connection is dropped by the pool, which reconnects on the next
  // query; without a listener the error would crash the process.
  pool.on('error', () => undefined);

  const ddl = await pool.connect();
  try {
    // Several processes starting together would race on CREATE ... IF NOT EXISTS (which is not
    // atomic against the catalog); the session lock makes them take turns.
    await ddl.query('SELECT pg_advisory_lock($1, $2)', [DDL_LOCK, schemaKey]);
    try {
      await ddl.query(`
        CREATE SCHEMA IF NOT EXISTS ${s};
        CREATE TABLE IF NOT EXISTS ${s}.events (
          position bigint PRIMARY KEY,
          stream text NOT NULL,
          revision bigint NOT NULL,
          tenant_id text NOT NULL,
          type text NOT NULL,
          data text NOT NULL,
          metadata text NOT NULL,
          UNIQUE (stream, revision)
        );
        CREATE INDEX IF NOT EXISTS events_type ON ${s}.events (type, position);
        CREATE INDEX IF NOT EXISTS events_tenant ON ${s}.events (tenant_id, position);
        CREATE TABLE IF NOT EXISTS ${s}.streams (stream text PRIMARY KEY, revision bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS ${s}.chain_heads (tenant_id text PRIMARY KEY, hash text NOT NULL);
      `);
      // Heads record the last position and the tenant's event count (and a MAC) since the audit
      // issue; older schemas get the columns, and their heads the values the log gives them now.
      const migrated = await ddl.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'chain_heads' AND column_name = 'events'`, [schema]);
      if (migrated.rowCount === 0) {
        await ddl.query(`
          ALTER TABLE ${s}.chain_heads ADD COLUMN IF NOT EXISTS position bigint, ADD COLUMN IF NOT EXISTS events bigint, ADD COLUMN IF NOT EXISTS mac text;
          UPDATE ${s}.chain_heads h SET
            position = (SELECT MAX(position) FROM ${s}.events e WHERE e.tenant_id = h.tenant_id),
            events = (SELECT COUNT(*) FROM ${s}.events e WHERE e.tenant_id = h.tenant_id);
        `);
      }
    } finally {
      await ddl.query('SELECT pg_advisory_unlock($1, $2)', [DDL_LOCK, schemaKey]);
    }
    ddl.release();
  } catch (e) {
    ddl.release(e instanceof Error ? e : true);
    await pool.end();
    throw e;
  }

  const appended = new EventEmitter();
  appended.setMaxListeners(0);
  let closed = false;

  // One dedicated connection listens for appends by other processes.
  let listener: pg.Client | null = null;
  let listenRetry: NodeJS.Timeout | null = null;
  const listen = async (): Promise<void> => {
    const client = new pg.Client({ connectionString: options.connectionString });
    client.on('notification', () => appended.emit('append'));
    const lost = () => {
      if (listener !== client) return;
      listener = null;
      void client.end().catch(() => undefined);
      if (!closed) listenRetry = setTimeout(relisten, LISTEN_RETRY_MS);
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      await client.query(`LISTEN "${channel}"`);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw e;
    }
    if (closed) {
      await client.end();
      return;
    }
    listener = client;
  };
  const relisten = (): void => {
    listenRetry = null;
    listen().then(
      // Appends may have come while no one was listening.
      () => appended.emit('append'),
      () => {
        if (!closed) listenRetry = setTimeout(relisten, LISTEN_RETRY_MS);
      },
    );
  };
  try {
    await listen();
  } catch (e) {
    await pool.end();
    throw e;
  }

  const stateQuery = {
    name: 'es-append-state',
    text: `
      WITH heads AS (SELECT tenant_id, hash, position, events FROM ${s}.chain_heads WHERE tenant_id = ANY($2::text[]) FOR UPDATE)
      SELECT 's' AS kind, stream AS key, revision::text AS value FROM ${s}.streams WHERE stream = ANY($1::text[])
      UNION ALL SELECT 'h', tenant_id, concat_ws(' ', hash, COALESCE(position, 0),
        COALESCE(events, (SELECT COUNT(*) FROM ${s}.events e WHERE e.tenant_id = heads.tenant_id))) FROM heads
      UNION ALL SELECT 'p', '', COALESCE(MAX(position), 0)::text FROM ${s}.events`,
  };
  const writeQuery = {
    name: 'es-append-write',
    text: `
      WITH e AS (
        INSERT INTO ${s}.events (position, stream, revision, tenant_id, type, data, metadata)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
      ), st AS (
        INSERT INTO ${s}.streams (stream, revision) SELECT * FROM unnest($8::text[], $9::bigint[])
        ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision
      ), h AS (
        INSERT INTO ${s}.chain_heads (tenant_id, hash, position, events, mac)
        SELECT * FROM unnest($10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::text[])
        ON CONFLICT (tenant_id) DO UPDATE SET hash = excluded.hash, position = excluded.position, events = excluded.events, mac = excluded.mac
      )
      SELECT pg_notify($15, '')`,
  };

  /** Appends to streams in order, in one transaction; returns each append's last revision and the last position. */
  const append = async (appends: readonly StreamAppend[]): Promise<{ revisions: number[]; lastPosition: number }> => {
    // Everything that does not depend on the stored state is prepared before taking the lock.
    const prepared = appends.map((a) => ({
      ...a,
      events: a.events.map((e) => {
        const tenantId = e.metadata.tenantId;
        if (typeof tenantId !== 'string') throw new Error(`event ${e.type} for ${a.streamName} has no metadata.tenantId`);
        return { type: e.type, tenantId, data: canonical(e.data), metadata: e.metadata };
      }),
    }));
    const streamNames = [...new Set(prepared.map((a) => a.streamName))];
    const tenantIds = [...new Set(prepared.flatMap((a) => a.events.map((e) => e.tenantId)))];

    const client = await pool.connect();
    let broken: Error | undefined;
    try {
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK}, ${schemaKey})`);
      const state = await client.query<{ kind: string; key: string; value: string }>({ ...stateQuery, values: [streamNames, tenantIds] });
      const revisions = new Map<string, number>();
      const heads = new Map<string, { hash: string; position: number; events: number }>();
      let position = 0;
      for (const r of state.rows) {
        if (r.kind === 's') revisions.set(r.key, Number(r.value));
        else if (r.kind === 'h') {
          const [hash, at, events] = r.value.split(' ');
          heads.set(r.key, { hash: hash!, position: Number(at), events: Number(events) });
        } else position = Number(r.value);
      }
      const cols = { position: [] as number[], stream: [] as string[], revision: [] as number[], tenant: [] as string[], type: [] as string[], data: [] as string[], metadata: [] as string[] };
      const touched = new Map<string, number>();
      const results: number[] = [];
      for (const a of prepared) {
        const actual = revisions.get(a.streamName) ?? -1;
        if (!revisionMatches(a.expectedRevision, actual)) throw new ConcurrencyError(a.streamName, a.expectedRevision, actual);
        let revision = actual;
        for (const e of a.events) {
          revision++;
          position++;
          // The canonical text is what is stored, so reading the event back reproduces its hash.
          const head = heads.get(e.tenantId) ?? { hash: GENESIS, position: 0, events: 0 };
          const metadata = canonical({ ...e.metadata, prevHash: head.hash });
          heads.set(e.tenantId, { hash: eventHashOfCanonical(a.streamName, revision, e.type, e.data, metadata), position, events: head.events + 1 });
          cols.position.push(position);
          cols.stream.push(a.streamName);
          cols.revision.push(revision);
          cols.tenant.push(e.tenantId);
          cols.type.push(e.type);
          cols.data.push(e.data);
          cols.metadata.push(metadata);
        }
        if (a.events.length > 0) {
          revisions.set(a.streamName, revision);
          touched.set(a.streamName, revision);
        }
        results.push(revision);
      }
      if (cols.position.length === 0) {
        await client.query('ROLLBACK');
        return { revisions: results, lastPosition: 0 };
      }
      const tenants = [...new Set(cols.tenant)];
      await client.query({
        ...writeQuery,
        values: [
          cols.position, cols.stream, cols.revision, cols.tenant, cols.type, cols.data, cols.metadata,
          [...touched.keys()], [...touched.values()],
          tenants, tenants.map((t) => heads.get(t)!.hash), tenants.map((t) => heads.get(t)!.position), tenants.map((t) => heads.get(t)!.events),
          tenants.map((t) => headMac(options.chainKeys, t, heads.get(t)!)),
          channel,
        ],
      });
      await client.query('COMMIT');
      return { revisions: results, lastPosition: position };
    } catch (e) {
      // A connection that cannot even roll back is broken: it must not go back to the pool.
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
      });
      throw e;
    } finally {
      client.release(broken);
    }
  };

  const readAllShapes = new Map<string, string>();
  const readAll = async (o: ReadAllOptions): Promise<RecordedEvent<AnyEvent>[]> => {
    if (o.types?.length === 0) return [];
    const tenant = o.tenantId !== undefined;
    const typed = o.types !== undefined;
    const key = `${tenant}:${typed}`;
    let text = readAllShapes.get(key);
    if (!text) {
      const where = ['position > $1', ...(tenant ? ['tenant_id = $3'] : []), ...(typed ? [`type = ANY($${tenant ? 4 : 3}::text[])`] : [])];
      text = `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE ${where.join(' AND ')} ORDER BY position LIMIT $2`;
      readAllShapes.set(key, text);
    }
    const values: unknown[] = [o.after, o.maxCount, ...(tenant ? [o.tenantId] : []), ...(typed ? [o.types] : [])];
    const r = await pool.query<Row>({ name: `es-read-all-${key}`, text, values });
    return r.rows.map(toRecorded);
  };

  const head = async (): Promise<number> => {
    const r = await pool.query<{ head: string }>({ name: 'es-head', text: `SELECT COALESCE(MAX(position), 0)::text AS head FROM ${s}.events` });
    return Number(r.rows[0]!.head);
  };

  const subscriptions = new Set<Subscription>();

  const subscribe = (o: SubscribeOptions): Subscription => {
    const subscription = pollingSubscription(
      { head: head, readAll: readAll, appended, closed: () => closed, pollMs: POLL_MS },
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
      const r = await append([{ streamName, events, expectedRevision: opts.expectedRevision ?? 'any' }]);
      if (events.length > 0) appended.emit('append');
      return { nextExpectedRevision: r.revisions[0]!, lastPosition: r.lastPosition };
    },
    appendToStreams: async (appends) => {
      ensureOpen();
      const r = await append(appends);
      if (r.lastPosition > 0) appended.emit('append');
      return { lastPosition: r.lastPosition };
    },
    readStream: async (streamName, opts = {}) => {
      const r = await pool.query<Row>({
        name: 'es-read-stream',
        text: `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE stream = $1 AND revision >= $2 ORDER BY revision LIMIT $3`,
        values: [streamName, opts.fromRevision ?? 0, opts.maxCount ?? Number.MAX_SAFE_INTEGER],
      });
      return r.rows.map(toRecorded);
    },
    readAll,
    headPosition: head,
    chainHead: async (tenantId) => {
      const r = await pool.query<{ hash: string; position: string | null; events: string | null; mac: string | null }>({
        name: 'es-chain-head',
        text: `SELECT hash, position::text, events::text, mac FROM ${s}.chain_heads WHERE tenant_id = $1`,
        values: [tenantId],
      });
      const row = r.rows[0];
      return row ? { hash: row.hash, position: row.position === null ? null : Number(row.position), events: row.events === null ? null : Number(row.events), mac: row.mac } : null;
    },
    authenticateChainHead: async (tenantId, expected) => {
      ensureOpen();
      if (!options.chainKeys) throw new Error('this event store has no chain keys to authenticate heads with');
      const mac = headMac(options.chainKeys, tenantId, expected);
      // Under the writers' lock, compare and set: an append meanwhile wrote its own MAC.
      const client = await pool.connect();
      try {
        await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${WRITE_LOCK}, ${schemaKey})`);
        const r = await client.query(
          `UPDATE ${s}.chain_heads SET mac = $6 WHERE tenant_id = $1 AND hash = $2 AND position IS NOT DISTINCT FROM $3 AND events IS NOT DISTINCT FROM $4 AND mac IS NOT DISTINCT FROM $5`,
          [tenantId, expected.hash, expected.position, expected.events, expected.mac, mac],
        );
        await client.query('COMMIT');
        return r.rowCount === 1;
      } catch (e) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw e;
      } finally {
        client.release();
      }
    },
    tenants: async () => {
      // Tenants with events (a loose index scan of the tenant index: one probe per tenant) and
      // tenants with a head: a deleted head or deleted events must not hide a tenant from verify.
      const r = await pool.query<{ tenant_id: string }>({
        name: 'es-tenants',
        text: `
          WITH RECURSIVE t(tenant_id) AS (
            (SELECT tenant_id FROM ${s}.events ORDER BY tenant_id LIMIT 1)
            UNION ALL
            SELECT (SELECT e.tenant_id FROM ${s}.events e WHERE e.tenant_id > t.tenant_id ORDER BY e.tenant_id LIMIT 1) FROM t WHERE t.tenant_id IS NOT NULL
          )
          SELECT tenant_id FROM t WHERE tenant_id IS NOT NULL
          UNION SELECT tenant_id FROM ${s}.chain_heads
          ORDER BY tenant_id`,
      });
      return r.rows.map((row) => row.tenant_id);
    },
    subscribe,
    close: async () => {
      if (closed) return;
      await Promise.all([...subscriptions].map((sub) => sub.stop()));
      closed = true;
      if (listenRetry) clearTimeout(listenRetry);
      const l = listener;
      listener = null;
      await l?.end().catch(() => undefined);
      await pool.end();
    },
  };
};
