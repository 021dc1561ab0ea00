/**
 * What the log stores. Events are readonly `{ type, data }` records named in the past tense; the
 * event store adds metadata (tenant, actor, request id, time) and the stream position. The
 * domain's union of events is declared in schema/ and registered in `EventRegistry`, so the
 * ports stay generic and platform/ imports nothing above it.
 */
export type Event<Type extends string = string, Data extends object = object> = Readonly<{
  type: Type;
  data: Readonly<Data>;
}>;

export type EventMetadata = Readonly<{
  tenantId: string;
  /** Id of the API key that caused the event, or `system` for the service itself. */
  actor: string;
  requestId: string;
  /** ISO-8601 time the event was decided. */
  at: string;
  /**
   * Set by the event store: the hash of this tenant's previous event (64 zeros for the first),
   * chaining each tenant's history so an edit or a deletion is detectable (see chain.ts).
   */
  prevHash?: string;
  /** W3C trace context of the request that caused it (only while tracing is on): a send's trace continues in the roles that read it. */
  traceparent?: string;
}>;

/** Filled in by the domain: `declare module` with `{ events: TheUnion }`. */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface EventRegistry {}

/** The union of events the log holds (plain `Event` until the domain registers its own). */
export type AnyEvent = EventRegistry extends { events: infer E extends Event } ? E : Event;

export type RecordedEvent<E extends Event = AnyEvent> = E &
  Readonly<{
    streamName: string;
    /** 0-based revision within the stream. */
    revision: number;
    /** 1-based position in the global log; strictly increasing in commit order. */
    position: number;
    metadata: EventMetadata;
  }>;
