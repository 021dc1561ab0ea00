import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { pollingSubscription, type AppendNotice } from './polling';
import { canonical, GENESIS, headMac, type ChainKeys } from './chain';
import type { AnyEvent, RecordedEvent } from './event';
import {
  ConcurrencyError,
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

/** What an append's NOTIFY says: "<last position> <type>,<type>..." (empty from older versions). */
const noticeOf = (payload: string | undefined): AppendNotice | undefined => {
  const m = /^(\d+) (\S+)$/.exec(payload ?? '');
  return m ? { position: Number(m[1]), types: m[2]!.split(','), ordered: true } : undefined;
};

/** This process's own append, told at once; its NOTIFY follows. */
const localNotice = (lastPosition: number, events: readonly NewEvent[]): AppendNotice => ({ position: lastPosition, types: [...new Set(events.map((e) => e.type))], ordered: false });

/** The events one append statement takes at most, unless one caller's appends alone are more. */
const MAX_BATCH_EVENTS = 1_000;

/** Fallback poll, for when a notification is lost (LISTEN connection down, reconnecting). */
const POLL_MS = 200;
const LISTEN_RETRY_MS = 1000;

/** Advisory lock namespaces (first key); the second key is derived from the schema name. */
const DDL_LOCK = 0x6e6f7401;
const WRITE_LOCK = 0x6e6f7402;
/** Where background appends queue, one at a time, before the writers' lock (see `background`). */
const BACKGROUND_LOCK = 0x6e6f7403;

/** Short enough that `<schema>_appended` stays a valid notification channel (63 bytes). */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/;

const EVENT_COLUMNS = 'position, stream, revision, type, data, metadata';

/**
 * The append, run inside PostgreSQL so that the writers' lock is held for one statement rather
 * than for the client's round trips: under load a writer's process may wait tens of
 * milliseconds for a core between two round trips, and every other writer waited with it (the
 * cluster's api process served 14 commands a second, each waiting 200-340 ms for the lock).
 * It takes the lock and appends units (each the appends of one caller, all or nothing) in order:
 * it checks a unit's expected revisions (a conflict skips the unit, having written none of it,
 * and is returned with the conflicting append), assigns revisions and positions, chains each
 * event's hash to its tenant's head (the metadata is sent split around where the previous hash
 * goes, the hash is `sha256` of the same text `eventHashOfCanonical` hashes), then inserts the
 * events of every unit at once, moves the streams and the heads and notifies subscribers. It is
 * called as a statement of its own, so it commits in the same round trip and the lock is never
 * held while a client is away. The heads' MACs are the client's (the chain key never reaches the
 * store): each head is written without one and authenticated by its writer right after the commit
 * (see `append` below).
 */
const appendFunction = (s: string): string => `
  CREATE OR REPLACE FUNCTION ${s}.append_v3(
    queue_a integer, queue_b integer, lock_a integer, lock_b integer, channel text,
    a_unit integer[], a_stream text[], a_expected text[], a_count integer[],
    e_tenant text[], e_type text[], e_data text[], e_before text[], e_after text[]
  ) RETURNS TABLE (kind text, key text, hash text, num bigint, events bigint)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    pos bigint;
    j integer := 0;
    i integer := 1;
    appends integer := coalesce(array_length(a_stream, 1), 0);
    unit integer; conflict_at integer;
    st_names text[] := '{}'; st_revs bigint[] := '{}';
    h_tenants text[] := '{}'; h_hashes text[] := '{}'; h_pos bigint[] := '{}'; h_events bigint[] := '{}';
    o_pos bigint[] := '{}'; o_stream text[] := '{}'; o_rev bigint[] := '{}'; o_tenant text[] := '{}';
    o_type text[] := '{}'; o_data text[] := '{}'; o_meta text[] := '{}';
    r_key integer[] := '{}'; r_revs bigint[] := '{}';
    p_unit integer[] := '{}'; p_pos bigint[] := '{}';
    -- What a unit found, to undo it on a conflict.
    u_revs bigint[]; u_tenants text[]; u_hashes text[]; u_hpos bigint[]; u_events bigint[];
    u_out integer; u_results integer; u_pos bigint;
    si integer; hi integer; rev bigint; cnt bigint; exp text; meta text; h text;
  BEGIN
    IF queue_a <> 0 THEN
      PERFORM pg_advisory_xact_lock(queue_a, queue_b);
    END IF;
    PERFORM pg_advisory_xact_lock(lock_a, lock_b);
    SELECT COALESCE(MAX(e.position), 0) INTO pos FROM ${s}.events e;
    WHILE i <= appends LOOP
      unit := a_unit[i];
      u_revs := st_revs; u_tenants := h_tenants; u_hashes := h_hashes; u_hpos := h_pos; u_events := h_events;
      u_out := coalesce(array_length(o_pos, 1), 0); u_results := coalesce(array_length(r_key, 1), 0); u_pos := pos;
      conflict_at := NULL;
      WHILE i <= appends AND a_unit[i] = unit LOOP
        si := array_position(st_names, a_stream[i]);
        IF si IS NULL THEN
          st_names := st_names || a_stream[i];
          st_revs := st_revs || COALESCE((SELECT x.revision FROM ${s}.streams x WHERE x.stream = a_stream[i]), -1);
          si := array_length(st_names, 1);
          u_revs := u_revs || st_revs[si];
        END IF;
        rev := st_revs[si];
        exp := a_expected[i];
        IF conflict_at IS NULL AND NOT (exp = 'any' OR (exp = 'no_stream' AND rev = -1) OR (exp = 'stream_exists' AND rev >= 0)
              OR (exp NOT IN ('any', 'no_stream', 'stream_exists') AND exp::bigint = rev)) THEN
          conflict_at := i;
          RETURN QUERY SELECT 'c'::text, i::text, NULL::text, rev, unit::bigint;
        END IF;
        IF conflict_at IS NOT NULL THEN
          j := j + a_count[i];
        ELSE
          FOR k IN 1 .. a_count[i] LOOP
            j := j + 1;
            rev := rev + 1;
            pos := pos + 1;
            hi := array_position(h_tenants, e_tenant[j]);
            IF hi IS NULL THEN
              h_tenants := h_tenants || e_tenant[j];
              SELECT c.hash, COALESCE(c.events, (SELECT COUNT(*) FROM ${s}.events x WHERE x.tenant_id = c.tenant_id))
                INTO h, cnt FROM ${s}.chain_heads c WHERE c.tenant_id = e_tenant[j];
              h_hashes := h_hashes || COALESCE(h, '${GENESIS}');
              h_events := h_events || COALESCE(cnt, 0);
              h_pos := h_pos || 0::bigint;
              hi := array_length(h_tenants, 1);
            END IF;
            meta := e_before[j] || h_hashes[hi] || e_after[j];
            h := encode(sha256(convert_to(a_stream[i] || E'\\n' || rev || E'\\n' || e_type[j] || E'\\n' || e_data[j] || E'\\n' || meta, 'UTF8')), 'hex');
            h_hashes[hi] := h;
            h_pos[hi] := pos;
            h_events[hi] := h_events[hi] + 1;
            o_pos := o_pos || pos; o_stream := o_stream || a_stream[i]; o_rev := o_rev || rev;
            o_tenant := o_tenant || e_tenant[j]; o_type := o_type || e_type[j]; o_data := o_data || e_data[j]; o_meta := o_meta || meta;
          END LOOP;
          st_revs[si] := rev;
          r_key := r_key || i;
          r_revs := r_revs || rev;
        END IF;
        i := i + 1;
      END LOOP;
      IF conflict_at IS NOT NULL THEN
        st_revs := u_revs; h_tenants := u_tenants; h_hashes := u_hashes; h_pos := u_hpos; h_events := u_events;
        o_pos := o_pos[1:u_out]; o_stream := o_stream[1:u_out]; o_rev := o_rev[1:u_out]; o_tenant := o_tenant[1:u_out];
        o_type := o_type[1:u_out]; o_data := o_data[1:u_out]; o_meta := o_meta[1:u_out];
        r_key := r_key[1:u_results]; r_revs := r_revs[1:u_results];
        pos := u_pos;
      ELSE
        p_unit := p_unit || unit;
        p_pos := p_pos || CASE WHEN pos = u_pos THEN 0 ELSE pos END;
      END IF;
    END LOOP;
    IF coalesce(array_length(o_pos, 1), 0) > 0 THEN
      INSERT INTO ${s}.events (position, stream, revision, tenant_id, type, data, metadata)
        SELECT * FROM unnest(o_pos, o_stream, o_rev, o_tenant, o_type, o_data, o_meta);
      INSERT INTO ${s}.streams AS x (stream, revision)
        SELECT n, r FROM unnest(st_names, st_revs) AS u(n, r) WHERE r >= 0
        ON CONFLICT (stream) DO UPDATE SET revision = excluded.revision WHERE x.revision <> excluded.revision;
      INSERT INTO ${s}.chain_heads AS c (tenant_id, hash, position, events, mac)
        SELECT * FROM unnest(h_tenants, h_hashes, h_pos, h_events, array_fill(NULL::text, ARRAY[array_length(h_tenants, 1)]))
        ON CONFLICT (tenant_id) DO UPDATE SET hash = excluded.hash, position = excluded.position, events = excluded.events, mac = NULL;
      -- The last position and the types appended (see AppendNotice); a payload near PostgreSQL's
      -- limit goes without the types, which wakes every reader.
      meta := pos || ' ' || (SELECT string_agg(DISTINCT t, ',') FROM unnest(o_type) AS t);
      PERFORM pg_notify(channel, CASE WHEN octet_length(meta) < 7000 THEN meta ELSE '' END);
      RETURN QUERY SELECT 'h'::text, u.t, u.h, u.p, u.e FROM unnest(h_tenants, h_hashes, h_pos, h_events) AS u(t, h, p, e);
    END IF;
    RETURN QUERY SELECT 'r'::text, x.k::text, NULL::text, x.r, NULL::bigint FROM unnest(r_key, r_revs) AS x(k, r);
    RETURN QUERY SELECT 'p'::text, x.u::text, NULL::text, x.p, NULL::bigint FROM unnest(p_unit, p_pos) AS x(u, p);
  END
  $fn$`;

/**
 * Sets a head's MAC if the head is still the one it was computed for. Its commit does not wait
 * for the WAL to reach the disk: the row stays locked until the commit, and the tenant's next
 * append (holding the writers' lock) waits for the row. A MAC lost in a crash is a head without
 * one, as if its writer had stopped before writing it (verification reports it; the next append
 * or `notify audit checkpoint` authenticates one).
 */
const macFunction = (s: string): string => `
  CREATE OR REPLACE FUNCTION ${s}.set_head_mac_v1(t text, h text, p bigint, e bigint, m text) RETURNS void
  LANGUAGE plpgsql AS $fn$
  BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    UPDATE ${s}.chain_heads SET mac = m WHERE tenant_id = t AND hash = h AND position = p AND events = e AND mac IS NULL;
  END
  $fn$`;

/**
 * The event store on PostgreSQL. Every append transaction first takes one transaction-scoped
 * advisory lock per schema, then assigns positions as max + 1 and commits: appends are
 * serialized, so positions are dense and become visible in order, and a subscriber reading
 * `position > n` never sees a gap fill in later (PostgreSQL releases the lock only after the
 * commit is visible). The price is one writer at a time, as with SQLite: throughput comes from
 * batching (one statement per append, its own transaction), not from parallel writers. A per-row sequence without the lock would let a later position commit
 * before an earlier one, and a subscriber would skip the earlier one forever.
 */
export const openPostgresEventStore = async (
  options: Readonly<{
    connectionString: string;
    schema?: string;
    poolSize?: number;
    chainKeys?: ChainKeys | null;
    /**
     * This instance's appends can wait (a delivery worker's outcomes, the planner's, expiry's):
     * they queue on a lock of their own before the writers' lock, so at most one of them at a
     * time is in the writers' queue, and an append that cannot wait (a command) finds at most that
     * one before it, however many background appends are waiting.
     */
    background?: boolean;
  }>,
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
      await ddl.query(appendFunction(s));
      await ddl.query(macFunction(s));
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
    client.on('notification', (message) => appended.emit('append', noticeOf(message.payload)));
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

  // Where the previous hash goes in an event's canonical metadata: a value no event can hold.
  const slot = randomBytes(32).toString('hex');
  const appendQuery = `SELECT kind, key, hash, num::text, events::text FROM ${s}.append_v3($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`;

  type Appended = Readonly<{ revisions: number[]; lastPosition: number }>;
  /** One caller's appends, prepared: all or nothing. */
  type Unit = Readonly<{
    appends: readonly StreamAppend[];
    events: number;
    cols: Readonly<{ tenant: string[]; type: string[]; data: string[]; before: string[]; after: string[] }>;
    resolve: (r: Appended) => void;
    reject: (e: unknown) => void;
  }>;

  /** Everything but what depends on the stored state, prepared by the caller before it queues. */
  const prepare = (appends: readonly StreamAppend[]): Unit['cols'] => {
    const cols = { tenant: [] as string[], type: [] as string[], data: [] as string[], before: [] as string[], after: [] as string[] };
    for (const a of appends) {
      for (const e of a.events) {
        const tenantId = e.metadata.tenantId;
        if (typeof tenantId !== 'string') throw new Error(`event ${e.type} for ${a.streamName} has no metadata.tenantId`);
        // The canonical text is what is stored, so reading the event back reproduces its hash.
        const metadata = canonical({ ...e.metadata, prevHash: slot });
        const at = metadata.indexOf(slot);
        cols.tenant.push(tenantId);
        cols.type.push(e.type);
        cols.data.push(canonical(e.data));
        cols.before.push(metadata.slice(0, at));
        cols.after.push(metadata.slice(at + slot.length));
      }
    }
    return cols;
  };

  /**
   * Group commit: an instance runs one append statement at a time, and the appends that came
   * meanwhile go together in the next, each still all or nothing and answered on its own. Where
   * appends come faster than the lock turns over (a burst of commands, a worker's outcomes), they
   * take one turn of the writers' lock and one commit instead of one each, and wait for one
   * another's turn no longer than they would have waited in the lock's queue.
   */
  const queue: Unit[] = [];
  let writing: Promise<void> | null = null;

  /** Appends to streams in order, in one transaction; returns each append's last revision and the last position. */
  const append = (appends: readonly StreamAppend[]): Promise<Appended> => {
    const cols = prepare(appends);
    return new Promise<Appended>((resolve, reject) => {
      queue.push({ appends, events: cols.type.length, cols, resolve, reject });
      kick();
    });
  };

  const kick = (): void => {
    if (writing || queue.length === 0) return;
    writing = write().finally(() => {
      writing = null;
      kick();
    });
  };

  const write = async (): Promise<void> => {
    while (queue.length > 0) {
      // At least one unit, and more while the statement stays of a bounded size.
      let events = 0;
      let take = 0;
      while (take < queue.length && (take === 0 || events + queue[take]!.events <= MAX_BATCH_EVENTS)) events += queue[take++]!.events;
      const units = queue.splice(0, take);
      try {
        const results = await appendUnits(units);
        units.forEach((u, i) => {
          const r = results[i]!;
          if (r instanceof Error) u.reject(r);
          else u.resolve(r);
        });
      } catch (e) {
        for (const u of units) u.reject(e);
      }
    }
  };

  const appendUnits = async (units: readonly Unit[]): Promise<(Appended | ConcurrencyError)[]> => {
    const unitOf: number[] = [];
    const streams: string[] = [];
    const expected: string[] = [];
    const counts: number[] = [];
    const cols = { tenant: [] as string[], type: [] as string[], data: [] as string[], before: [] as string[], after: [] as string[] };
    /** The global index (1-based, as the function reports it) of each unit's first append. */
    const firstOf: number[] = [];
    units.forEach((u, n) => {
      firstOf.push(streams.length + 1);
      for (const a of u.appends) {
        unitOf.push(n);
        streams.push(a.streamName);
        expected.push(String(a.expectedRevision));
        counts.push(a.events.length);
      }
      cols.tenant.push(...u.cols.tenant);
      cols.type.push(...u.cols.type);
      cols.data.push(...u.cols.data);
      cols.before.push(...u.cols.before);
      cols.after.push(...u.cols.after);
    });
    // One statement, its own transaction: the lock is taken and released (at its commit) inside
    // PostgreSQL. A failure rolls it back whole; a conflict skips its unit before it is written.
    const r = await pool.query<{ kind: string; key: string | null; hash: string | null; num: string; events: string | null }>({
      name: 'es-append',
      text: appendQuery,
      values: [options.background ? BACKGROUND_LOCK : 0, schemaKey, WRITE_LOCK, schemaKey, channel, unitOf, streams, expected, counts, cols.tenant, cols.type, cols.data, cols.before, cols.after],
    });
    const results: (Appended | ConcurrencyError)[] = units.map(() => ({ revisions: [], lastPosition: 0 }));
    for (const row of r.rows) {
      const i = Number(row.key);
      if (row.kind === 'c') {
        const n = unitOf[i - 1]!;
        const a = units[n]!.appends[i - firstOf[n]!]!;
        results[n] = new ConcurrencyError(a.streamName, a.expectedRevision, Number(row.num));
      } else if (row.kind === 'r') (results[unitOf[i - 1]!] as Appended).revisions.push(Number(row.num));
      else if (row.kind === 'p') results[i] = { ...(results[i] as Appended), lastPosition: Number(row.num) };
    }
    const heads = r.rows.filter((row) => row.kind === 'h');
    if (options.chainKeys && heads.length > 0) {
      const written = authenticateHeads(options.chainKeys, heads.map((h) => ({ tenantId: h.key!, hash: h.hash!, position: Number(h.num), events: Number(h.events) })))
        .finally(() => macsInFlight.delete(written));
      macsInFlight.add(written);
    }
    return results;
  };

  /**
   * The MACs of the heads an append committed, written right after its commit (the append is
   * answered meanwhile), each only while its head is still the tenant's: a later append's writer
   * authenticates its own. The append is committed whatever happens here: a MAC that could not be
   * written leaves the head unauthenticated until the tenant's next append, or until `notify
   * audit checkpoint` authenticates the verified chain, so a failure is not the caller's (who
   * would append again). One statement per head: each holds one head's row at a time, so none
   * waits in a cycle with an append that moves several heads. This instance's reads of a head and
   * its close wait for the MACs it is writing.
   */
  const macsInFlight = new Set<Promise<void>>();
  const authenticateHeads = async (keys: ChainKeys, heads: readonly (Readonly<{ tenantId: string; hash: string; position: number; events: number }>)[]): Promise<void> => {
    await Promise.all(heads.map((h) => pool.query({
      name: 'es-head-mac',
      text: `SELECT ${s}.set_head_mac_v1($1, $2, $3, $4, $5)`,
      values: [h.tenantId, h.hash, h.position, h.events, headMac(keys, h.tenantId, h)],
    }).catch(() => undefined)));
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
      if (events.length > 0) appended.emit('append', localNotice(r.lastPosition, events));
      return { nextExpectedRevision: r.revisions[0]!, lastPosition: r.lastPosition };
    },
    appendToStreams: async (appends) => {
      ensureOpen();
      const r = await append(appends);
      if (r.lastPosition > 0) appended.emit('append', localNotice(r.lastPosition, appends.flatMap((a) => a.events)));
      return { lastPosition: r.lastPosition };
    },
    readStream: async (streamName, opts = {}) => {
      const r = await pool.query<Row>({
        name: 'es-read-stream',
        text: `SELECT ${EVENT_COLUMNS} FROM ${s}.events WHERE stream = $1 AND revision >= $2 AND ($4::text[] IS NULL OR type = ANY($4)) ORDER BY revision LIMIT $3`,
        values: [streamName, opts.fromRevision ?? 0, opts.maxCount ?? Number.MAX_SAFE_INTEGER, opts.types ?? null],
      });
      return r.rows.map(toRecorded);
    },
    readAll,
    headPosition: head,
    chainHead: async (tenantId) => {
      await Promise.all(macsInFlight);
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
      while (writing) await writing;
      await Promise.all(macsInFlight);
      if (listenRetry) clearTimeout(listenRetry);
      const l = listener;
      listener = null;
      await l?.end().catch(() => undefined);
      await pool.end();
    },
  };
};
