import type { AnyEvent, Event, EventMetadata, RecordedEvent } from './event';
import type { ChainHead } from './chain';

/**
 * What the writer expects the stream to be before the append:
 * a revision (the last event's 0-based revision), `no_stream`, `stream_exists` or `any`.
 */
export type ExpectedRevision = number | 'no_stream' | 'stream_exists' | 'any';

/** Whether a stream whose last revision is `actual` (-1: none) meets the writer's expectation. */
export const revisionMatches = (expected: ExpectedRevision, actual: number): boolean =>
  expected === 'any' ||
  (expected === 'no_stream' && actual === -1) ||
  (expected === 'stream_exists' && actual >= 0) ||
  expected === actual;

export type NewEvent = Event & Readonly<{ metadata: EventMetadata }>;

export type AppendResult = Readonly<{
  /** Revision of the last event written, which is the expected revision of the next append. */
  nextExpectedRevision: number;
  /** Global position of the last event written. */
  lastPosition: number;
}>;

export class ConcurrencyError extends Error {
  constructor(
    readonly streamName: string,
    readonly expected: ExpectedRevision,
    /** The stream's actual last revision, or -1 when it does not exist. */
    readonly actual: number,
  ) {
    super(`stream ${streamName}: expected revision ${String(expected)}, actual ${actual}`);
    this.name = 'ConcurrencyError';
  }
}

export type StreamAppend = Readonly<{ streamName: string; events: readonly NewEvent[]; expectedRevision: ExpectedRevision }>;

export type ReadAllOptions = Readonly<{
  /** Read events with position strictly greater than this; 0 reads from the start. */
  after: number;
  maxCount: number;
  /** Only events whose type is listed; absent reads every type. */
  types?: readonly string[];
  /** Only the events of one tenant (metadata.tenantId). */
  tenantId?: string;
}>;

export type SubscriptionHandler = (events: readonly RecordedEvent<AnyEvent>[]) => Promise<void>;

export type SubscribeOptions = Readonly<{
  /** Deliver events after this position (0 = from the start): catch up, then follow live. */
  after: number;
  handler: SubscriptionHandler;
  batchSize?: number;
  types?: readonly string[];
  /** Called when the handler throws; the subscription stops after reporting. */
  onError?: (error: unknown) => void;
}>;

export interface Subscription {
  /** Stops after the batch in progress; resolves when the handler will not be called again. */
  stop(): Promise<void>;
  /** Resolves once the subscription has delivered everything up to `position`. */
  caughtUp(position: number): Promise<void>;
  /**
   * The position up to which every event has been delivered and handled: past the events a type
   * filter left out too, so a reader of few types knows how far the log has been seen.
   */
  progress(): number;
}

/**
 * The log, source of truth. Appends are atomic per call; `appendToStreams` is atomic across its
 * streams where the store can do that (SQLite, PostgreSQL) and must be documented otherwise.
 */
export interface EventStore {
  appendToStream(
    streamName: string,
    events: readonly NewEvent[],
    options?: Readonly<{ expectedRevision?: ExpectedRevision }>,
  ): Promise<AppendResult>;
  appendToStreams(appends: readonly StreamAppend[]): Promise<{ lastPosition: number }>;
  /**
   * Events of one stream from a revision (inclusive), in order. Empty when the stream does not exist.
   * `types`: only events of these types (`maxCount` counts those), so a reader pages on from the
   * last revision it got, not from `fromRevision + maxCount`.
   */
  readStream(
    streamName: string,
    options?: Readonly<{ fromRevision?: number; maxCount?: number; types?: readonly string[] }>,
  ): Promise<readonly RecordedEvent<AnyEvent>[]>;
  readAll(options: ReadAllOptions): Promise<readonly RecordedEvent<AnyEvent>[]>;
  /** Position of the last event in the log (0 when empty). */
  headPosition(): Promise<number>;
  /**
   * The tenant's chain head as the store recorded it at append time: the last event's hash, its
   * position, the tenant's event count, and a MAC over them when the store was given chain keys
   * (null: no head). Every appended event gets `metadata.prevHash`, chaining the tenant's history.
   */
  chainHead(tenantId: string): Promise<ChainHead | null>;
  /**
   * Authenticates a head again with the current chain key (after its chain was verified, or after
   * a master key rotation), only if the store still holds `expected` for the tenant; false when
   * it changed meanwhile (an append: that append authenticated it already).
   */
  authenticateChainHead(tenantId: string, expected: ChainHead): Promise<boolean>;
  /**
   * Every tenant that has events or a chain head, for verifying every chain: a tenant whose head
   * was deleted is still listed (from its events), and so is a head whose events were deleted.
   */
  tenants(): Promise<readonly string[]>;
  subscribe(options: SubscribeOptions): Subscription;
  close(): Promise<void>;
}
