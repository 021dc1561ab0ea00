import type { AnyEvent, Event, EventMetadata, RecordedEvent } from '#schema/events';
import type { Command } from '#schema/commands';
import { ConcurrencyError, type EventStore } from '#platform/event-store/port';

export type Decider<C extends Command, E extends Event, S> = Readonly<{
  decide: (command: C, state: S) => E[];
  evolve: (state: S, event: E) => S;
  initialState: () => S;
}>;

export type Loaded<S> = Readonly<{ state: S; revision: number }>;

export type Handled<E extends Event, S> = Readonly<{
  /** Events this call appended (empty when the command changed nothing). */
  appended: readonly E[];
  state: S;
  /** The stream's last revision after the call (-1: the stream does not exist). */
  revision: number;
  /** Global position of the last appended event, or null when nothing was appended. */
  position: number | null;
}>;

/** Folds a whole stream. Streams here stay small: the delivery log lives in its own streams. */
export const load = async <E extends Event, S>(
  store: EventStore,
  streamName: string,
  decider: Pick<Decider<never, E, S>, 'evolve' | 'initialState'>,
  from?: Loaded<S>,
): Promise<Loaded<S>> => {
  let state = from?.state ?? decider.initialState();
  let revision = from?.revision ?? -1;
  const events = await store.readStream(streamName, { fromRevision: revision + 1 });
  for (const e of events) {
    state = decider.evolve(state, e as unknown as E);
    revision = e.revision;
  }
  return { state, revision };
};

/**
 * Read, decide, append with the revision that was read. A concurrent writer makes the append
 * fail; deciding again on the fresh state is safe because `decide` is pure. `loaded`: the state
 * the caller already has (read for its own checks, or the initial state of a stream it just
 * named), so the first attempt needs no read; the expected revision still guards it, and a
 * conflict reads the stream as any retry does.
 */
export const handleCommand = async <C extends Command, E extends Event, S>(
  store: EventStore,
  streamName: string,
  decider: Decider<C, E, S>,
  command: C,
  metadata: EventMetadata,
  options: Readonly<{ retries?: number; cache?: StreamCache<E, S>; loaded?: Loaded<S> }> = {},
): Promise<Handled<E, S>> => {
  const retries = options.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    const loaded = attempt === 0 && options.loaded
      ? options.loaded
      : options.cache
        ? await options.cache.load(streamName)
        : await load(store, streamName, decider);
    const events = decider.decide(command, loaded.state);
    if (events.length === 0) return { appended: [], state: loaded.state, revision: loaded.revision, position: null };
    try {
      const result = await store.appendToStream(
        streamName,
        events.map((e) => ({ ...e, metadata })),
        { expectedRevision: loaded.revision < 0 ? 'no_stream' : loaded.revision },
      );
      const state = events.reduce(decider.evolve, loaded.state);
      options.cache?.remember(streamName, { state, revision: result.nextExpectedRevision });
      return { appended: events, state, revision: result.nextExpectedRevision, position: result.lastPosition };
    } catch (e) {
      if (!(e instanceof ConcurrencyError) || attempt >= retries) throw e;
    }
  }
};

/**
 * Keeps folded state of a few hot, small streams (tenants, the operator) and refreshes it on
 * every load by reading only the events after the cached revision: one cheap read keeps it
 * exact, so a revoked key stops working on the next request, in every process.
 *
 * Only streams that exist are kept, least recently used first out: a stream name comes from
 * untrusted input (the tenant id in an API key), so junk names must not push real tenants out.
 */
export class StreamCache<E extends Event, S> {
  private readonly entries = new Map<string, Loaded<S> & Readonly<{ checkedAt: number }>>();

  constructor(
    private readonly store: EventStore,
    private readonly decider: Pick<Decider<never, E, S>, 'evolve' | 'initialState'>,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** How many streams are cached (for tests and metrics). */
  get size(): number {
    return this.entries.size;
  }

  /**
   * The stream's state, read on from the cached revision. `maxAgeMs`: the cached state is taken
   * without a read if a read confirmed it that recently (a command that reads a tenant's
   * settings right after its request's authentication read the same stream).
   */
  async load(streamName: string, options: Readonly<{ maxAgeMs?: number }> = {}): Promise<Loaded<S>> {
    const cached = this.entries.get(streamName);
    const now = this.now();
    if (cached && options.maxAgeMs !== undefined && now - cached.checkedAt <= options.maxAgeMs) return cached;
    const loaded = await load(this.store, streamName, this.decider, cached);
    if (cached && loaded.revision === cached.revision) {
      // Used again, unchanged: move it to the young end.
      this.entries.delete(streamName);
      const confirmed = { ...cached, checkedAt: now };
      this.entries.set(streamName, confirmed);
      return confirmed;
    }
    this.remember(streamName, loaded, now);
    return loaded;
  }

  remember(streamName: string, loaded: Loaded<S>, checkedAt = this.now()): void {
    // A stream that does not exist costs one indexed read to look up again; caching it would
    // let anyone evict every real entry by asking for names that do not exist.
    if (loaded.revision < 0) return;
    const current = this.entries.get(streamName);
    if (current && current.revision >= loaded.revision) return;
    if (current) this.entries.delete(streamName);
    else if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(streamName, { ...loaded, checkedAt });
  }
}

export type { RecordedEvent, AnyEvent };
