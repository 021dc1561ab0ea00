import {
  BACKWARDS,
  END,
  FORWARDS,
  jsonEvent,
  KurrentDBClient,
  NO_STREAM,
  START,
  streamNameFilter,
  StreamNotFoundError,
  WrongExpectedVersionError,
  type AllStreamResolvedEvent,
  type AppendStreamRequest,
  type AppendStreamState,
  type Position,
} from '@kurrent/kurrentdb-client';
import { eventHash, GENESIS, headMac, type ChainKeys } from './chain';
import type { AnyEvent, EventMetadata, RecordedEvent } from './event';
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

/**
 * Each tenant's chain head lives in a stream of its own, appended in the same atomic
 * multi-stream append as the events it covers, with an expected revision: two writers of one
 * tenant serialize on it, as they do on the chain_heads row of the SQL stores.
 */
const CHAIN_PREFIX = 'notify-chain-';
const chainStream = (tenantId: string) => `${CHAIN_PREFIX}${tenantId}`;
/** Our events only: no system streams, no chain-head streams. */
const OWN_STREAMS = `^(?!\\$|${CHAIN_PREFIX})`;

/** Commit positions are byte offsets in the log; they fit a double until 8 PiB. */
const toNumber = (p: Position | bigint | undefined): number => Number(typeof p === 'bigint' ? p : (p?.commit ?? 0n));

const toRecorded = (r: AllStreamResolvedEvent): RecordedEvent<AnyEvent> | null => {
  const e = r.event;
  if (!e || !e.isJson) return null;
  return {
    type: e.type,
    data: e.data,
    metadata: e.metadata as EventMetadata,
    streamName: e.streamId,
    revision: Number(e.revision),
    position: toNumber(e.position),
  } as unknown as RecordedEvent<AnyEvent>;
};

const isMissing = (e: unknown) => e instanceof StreamNotFoundError;

/**
 * The event store on EventStoreDB / KurrentDB (24.x and later; atomic appends across streams
 * need 25.1's multiStreamAppend) through @kurrent/kurrentdb-client, the maintained successor of
 * @eventstore/db-client speaking the same gRPC protocol. Positions are the server's commit
 * positions: increasing, not dense. Runs the same contract suite as the other stores when a
 * server is configured (EVENTSTORE_CONNECTION_STRING); none can be installed on our CI machines.
 */
export const openKurrentDbEventStore = async (options: Readonly<{ connectionString: string; chainKeys?: ChainKeys | null }>): Promise<EventStore> => {
  const client = KurrentDBClient.connectionString(options.connectionString);
  let closed = false;
  const subscriptions = new Set<Subscription>();

  const lastRevision = async (streamName: string): Promise<number> => {
    try {
      for await (const r of client.readStream(streamName, { direction: BACKWARDS, fromRevision: END, maxCount: 1 })) {
        return Number(r.event?.revision ?? -1);
      }
      return -1;
    } catch (e) {
      if (isMissing(e)) return -1;
      throw e;
    }
  };

  /** The tenant's head: hash, event count (null in heads written before counts) and MAC; positions are the server's. */
  type Head = { hash: string; events: number | null; mac: string | null; revision: number };
  const head = async (tenantId: string): Promise<Head> => {
    try {
      for await (const r of client.readStream<{ type: 'ChainHead'; data: { hash: string; events?: number; mac?: string } }>(chainStream(tenantId), { direction: BACKWARDS, fromRevision: END, maxCount: 1 })) {
        if (r.event) return { hash: r.event.data.hash, events: r.event.data.events ?? null, mac: r.event.data.mac ?? null, revision: Number(r.event.revision) };
      }
    } catch (e) {
      if (!isMissing(e)) throw e;
    }
    return { hash: GENESIS, events: 0, mac: null, revision: -1 };
  };
  const headEvent = (tenantId: string, h: Pick<Head, 'hash' | 'events'>) => {
    const mac = headMac(options.chainKeys, tenantId, { hash: h.hash, position: null, events: h.events });
    return jsonEvent({ type: 'ChainHead', data: { hash: h.hash, ...(h.events === null ? {} : { events: h.events }), ...(mac ? { mac } : {}) } });
  };

  const stateOf = (revision: number): AppendStreamState => (revision < 0 ? NO_STREAM : BigInt(revision));

  /**
   * One attempt: reads each stream's revision and each tenant's chain head, hashes, and appends
   * everything with exact expected states. A conflict on a chain head or on a stream the caller
   * did not pin means another writer got in first: the caller retries.
   */
  const attempt = async (appends: readonly StreamAppend[]): Promise<{ results: AppendResult[]; position: number } | 'retry'> => {
    const heads = new Map<string, Head>();
    const requests: AppendStreamRequest[] = [];
    const results: AppendResult[] = [];
    for (const a of appends) {
      const actual = await lastRevision(a.streamName);
      if (!revisionMatches(a.expectedRevision, actual)) throw new ConcurrencyError(a.streamName, a.expectedRevision, actual);
      let revision = actual;
      const events = [];
      for (const e of a.events) {
        revision++;
        const tenantId = e.metadata.tenantId;
        if (typeof tenantId !== 'string') throw new Error(`event ${e.type} for ${a.streamName} has no metadata.tenantId`);
        if (!heads.has(tenantId)) heads.set(tenantId, await head(tenantId));
        const h = heads.get(tenantId)!;
        const metadata = { ...e.metadata, prevHash: h.hash };
        heads.set(tenantId, { ...h, hash: eventHash({ streamName: a.streamName, revision, type: e.type, data: e.data, metadata }), events: h.events === null ? null : h.events + 1 });
        events.push(jsonEvent({ type: e.type, data: e.data as Record<string, unknown>, metadata }));
      }
      if (events.length > 0) requests.push({ streamName: a.streamName, events, expectedState: stateOf(actual) });
      results.push({ nextExpectedRevision: revision, lastPosition: 0 });
    }
    for (const [tenantId, h] of heads) {
      requests.push({ streamName: chainStream(tenantId), events: [headEvent(tenantId, h)], expectedState: stateOf(h.revision) });
    }
    if (requests.length === 0) return { results, position: 0 };
    try {
      const r = await client.multiStreamAppend(requests);
      const position = Number(r.position);
      return { results: results.map((x) => ({ ...x, lastPosition: position })), position };
    } catch (e) {
      if (!(e instanceof WrongExpectedVersionError)) throw e;
      const pinned = appends.find((a) => a.streamName === e.streamName && a.expectedRevision !== 'any');
      if (pinned) {
        const actual = typeof e.actualState === 'bigint' ? Number(e.actualState) : -1;
        throw new ConcurrencyError(pinned.streamName, pinned.expectedRevision, actual);
      }
      return 'retry';
    }
  };

  const append = async (appends: readonly StreamAppend[]) => {
    if (closed) throw new Error('event store is closed');
    for (let tries = 0; ; tries++) {
      const r = await attempt(appends);
      if (r !== 'retry') return r;
      if (tries >= 50) throw new Error('event store: could not append after 50 attempts: the chain head keeps moving');
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * (tries + 1)));
    }
  };

  const readAll = async (o: ReadAllOptions): Promise<readonly RecordedEvent<AnyEvent>[]> => {
    if (o.types?.length === 0) return [];
    const out: RecordedEvent<AnyEvent>[] = [];
    const types = o.types ? new Set(o.types) : null;
    const from = o.after === 0 ? START : { commit: BigInt(o.after), prepare: BigInt(o.after) };
    for await (const r of client.readAll({ direction: FORWARDS, fromPosition: from, filter: streamNameFilter({ regex: OWN_STREAMS }) })) {
      const e = toRecorded(r);
      if (!e || e.position <= o.after) continue;
      if (types && !types.has(e.type)) continue;
      if (o.tenantId !== undefined && e.metadata.tenantId !== o.tenantId) continue;
      out.push(e);
      if (out.length >= o.maxCount) break;
    }
    return out;
  };

  const headPosition = async (): Promise<number> => {
    for await (const r of client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1, filter: streamNameFilter({ regex: OWN_STREAMS }) })) {
      return toNumber(r.event?.position);
    }
    return 0;
  };

  const subscribe = (o: SubscribeOptions): Subscription => {
    const batchSize = o.batchSize ?? 500;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
    const types = o.types ? new Set(o.types) : null;
    let delivered = o.after;
    let stopping = false;
    let ended = false;
    const waiters: { position: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
    const settle = () => {
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.position <= delivered) waiters.splice(i, 1)[0]!.resolve();
    };
    const from = o.after === 0 ? START : { commit: BigInt(o.after), prepare: BigInt(o.after) };
    const source = client.subscribeToAll({ fromPosition: from, filter: streamNameFilter({ regex: OWN_STREAMS }) });

    const run = async () => {
      let batch: RecordedEvent<AnyEvent>[] = [];
      let batchEnd = delivered;
      const flush = async () => {
        if (batch.length > 0) await o.handler(batch);
        batch = [];
        delivered = Math.max(delivered, batchEnd);
        settle();
      };
      try {
        // The stream buffers what the server sent; a batch ends when it is full or the buffer is empty.
        for await (const r of source) {
          if (stopping) break;
          const e = toRecorded(r);
          if (!e || e.position <= delivered) continue;
          batchEnd = e.position;
          if (!types || types.has(e.type)) batch.push(e);
          if (batch.length >= batchSize || source.readableLength === 0) await flush();
        }
        await flush();
      } catch (e) {
        if (!stopping) {
          for (const w of waiters.splice(0)) w.reject(e);
          o.onError?.(e);
        }
      } finally {
        ended = true;
        stopping = true;
        subscriptions.delete(subscription);
        for (const w of waiters.splice(0)) w.reject(new Error('subscription stopped'));
      }
    };

    const subscription: Subscription = {
      progress: () => delivered,
      stop: async () => {
        stopping = true;
        await source.unsubscribe();
        await loop;
      },
      caughtUp: (position) =>
        position <= delivered
          ? Promise.resolve()
          : stopping || ended
            ? Promise.reject(new Error(`subscription stopped at position ${delivered}, before ${position}`))
            : new Promise<void>((resolve, reject) => waiters.push({ position, resolve, reject })),
    };
    subscriptions.add(subscription);
    const loop = run();
    return subscription;
  };

  return {
    appendToStream: async (streamName, events, opts = {}) => {
      const r = await append([{ streamName, events, expectedRevision: opts.expectedRevision ?? 'any' }]);
      return r.results[0]!;
    },
    appendToStreams: async (appends) => ({ lastPosition: (await append(appends)).position }),
    readStream: async (streamName, opts = {}) => {
      const out: RecordedEvent<AnyEvent>[] = [];
      if (opts.types?.length === 0) return out;
      try {
        const maxCount = opts.maxCount ?? Number.MAX_SAFE_INTEGER;
        const types = opts.types ? new Set(opts.types) : null;
        // Filtered on the client: the server's filters apply to $all only.
        const read = client.readStream(streamName, { fromRevision: BigInt(opts.fromRevision ?? 0), ...(types ? {} : { maxCount: BigInt(maxCount) }) });
        for await (const r of read) {
          if (out.length >= maxCount) break;
          const e = r.event;
          if (!e || !e.isJson || (types && !types.has(e.type))) continue;
          out.push({
            type: e.type,
            data: e.data,
            metadata: e.metadata as EventMetadata,
            streamName: e.streamId,
            revision: Number(e.revision),
            position: toNumber(e.position ?? r.commitPosition),
          } as unknown as RecordedEvent<AnyEvent>);
        }
      } catch (e) {
        if (!isMissing(e)) throw e;
      }
      return out;
    },
    readAll,
    headPosition,
    chainHead: async (tenantId) => {
      const h = await head(tenantId);
      return h.revision < 0 ? null : { hash: h.hash, position: null, events: h.events, mac: h.mac };
    },
    authenticateChainHead: async (tenantId, expected) => {
      if (!options.chainKeys) throw new Error('this event store has no chain keys to authenticate heads with');
      const h = await head(tenantId);
      if (h.revision < 0 || h.hash !== expected.hash || h.events !== expected.events || h.mac !== expected.mac) return false;
      try {
        await client.appendToStream(chainStream(tenantId), [headEvent(tenantId, h)], { streamState: BigInt(h.revision) });
        return true;
      } catch (e) {
        if (e instanceof WrongExpectedVersionError) return false;
        throw e;
      }
    },
    tenants: async () => {
      const tenants = new Set<string>();
      for await (const r of client.readAll({ fromPosition: START, filter: streamNameFilter({ prefixes: [CHAIN_PREFIX] }) })) {
        if (r.event) tenants.add(r.event.streamId.slice(CHAIN_PREFIX.length));
      }
      return [...tenants].sort();
    },
    subscribe,
    close: async () => {
      if (closed) return;
      await Promise.all([...subscriptions].map((s) => s.stop()));
      closed = true;
      await client.dispose();
    },
  };
};
