import type { EventStore } from '#platform/event-store/port';
import { followLog, type FollowedLog } from '#platform/event-store/follow';
import { processHealth, type ComponentHealth, type Health } from '#platform/health';
import type { ReadStore } from '#platform/read-store/port';
import type { AnyEvent, RecordedEvent } from '#schema/events';
import type { Logger } from '#platform/logger';
import { Channel } from './channel';

export type LiveEvent = Readonly<{
  position: number;
  type: string;
  at: Date;
  notificationId: string | null;
  userId: string | null;
  dropped: number | null;
}>;

type NotificationDoc = Readonly<{ lastPosition: number }>;

type EventWatcher = Readonly<{ tenantId: string; notificationId: string | null; userId: string | null; types: ReadonlySet<string> | null; channel: Channel<LiveEvent> }>;

/** A breaker of one integration changed, as the delivery workers recorded it. */
export type BreakerChange = Readonly<{
  owner: string;
  name: string;
  channel: string;
  state: 'open' | 'half-open' | 'closed';
  reason: string;
  at: Date;
  lastFailure: string | null;
}>;

/** owners null: every owner's (the operator's view). */
type BreakerWatcher = Readonly<{ owners: ReadonlySet<string> | null; channel: Channel<BreakerChange> }>;
type ProgressWatcher<D> = Readonly<{ channel: Channel<D> }>;

/** Matches no event: the idle subscription reads only how far the log goes. */
const NO_EVENT_TYPE = 'LiveHubIdle';
/** How long the hub keeps reading every event after its last watcher left (watchers come and go). */
const IDLE_AFTER_MS = 10_000;

const field = (e: RecordedEvent<AnyEvent>, name: string): string | null => {
  const v = (e.data as Record<string, unknown>)[name];
  return typeof v === 'string' ? v : null;
};

/**
 * Feeds subscriptions from the log. Per-event streams are filtered per tenant and bounded per
 * subscriber. Progress is coalesced: an event only marks its notification dirty; a timer
 * publishes the read model's snapshot at most `flushHz` times a second, and only once the read
 * model has caught up with the event that made it dirty, so the last snapshot is never stale.
 */
export class LiveHub {
  private readonly eventWatchers = new Set<EventWatcher>();
  private readonly breakerWatchers = new Set<BreakerWatcher>();
  private readonly progressWatchers = new Map<string, Set<ProgressWatcher<unknown>>>();
  private readonly dirty = new Map<string, number>();
  private subscription: Readonly<{ log: FollowedLog; everything: boolean }> | null = null;
  private health: ComponentHealth | null = null;
  private kept: ComponentHealth | null = null;
  /** Whether the current (or starting) subscription reads every event. */
  private following = false;
  private stopped = false;
  private idleTimer: NodeJS.Timeout | null = null;
  private switching: Promise<void> = Promise.resolve();
  /** The last event handed to watchers: a restart resumes after it, so nothing is skipped. */
  private dispatched = 0;
  private timer: NodeJS.Timeout | null = null;
  private flushing = false;

  constructor(
    private readonly deps: Readonly<{ eventStore: EventStore; readStore: ReadStore; logger: Logger; flushHz?: number; queueCapacity?: number; health?: Health }>,
  ) {}

  async start(): Promise<void> {
    this.dispatched = await this.deps.eventStore.headPosition();
    const health = (this.deps.health ?? processHealth).register('live-hub');
    this.health = health;
    // One registration across the subscriptions the hub switches between (a stop removes it).
    this.kept = { name: health.name, ok: () => health.ok(), failing: (e) => health.failing(e), get healthy() { return health.healthy; }, remove: () => undefined };
    await this.follow(false);
    this.timer = setInterval(() => void this.flush(), 1000 / (this.deps.flushHz ?? 4));
    this.timer.unref();
  }

  /**
   * Follows every event while anyone watches; otherwise only the log's head (no event is read),
   * so a service nobody watches live pays nothing for a fan-out's events. A store error does
   * not end live updates for good: the subscription resumes after the last event dispatched.
   */
  private async follow(everything: boolean): Promise<void> {
    const previous = this.subscription;
    this.subscription = null;
    this.following = everything;
    if (previous) {
      // Idle, the subscription saw the log up to its progress: nothing after it was dropped.
      if (!previous.everything) this.dispatched = Math.max(this.dispatched, previous.log.progress());
      await previous.log.stop();
    }
    if (this.stopped) return;
    const log = await followLog({
      eventStore: this.deps.eventStore,
      health: this.kept!,
      resumeAfter: async () => this.dispatched,
      ...(everything ? {} : { types: [NO_EVENT_TYPE] }),
      handler: async (events) => {
        this.dispatch(events);
        this.dispatched = events.at(-1)?.position ?? this.dispatched;
      },
      onFailure: (e, failures, waitMs) => this.deps.logger.error({ err: e, failures, waitMs }, 'live hub subscription failed; resuming'),
    });
    this.subscription = { log, everything };
  }

  /** Called as watchers come and go: reads events only while there is one (idle a while after the last). */
  private watchersChanged(): void {
    const watched = this.eventWatchers.size > 0 || this.progressWatchers.size > 0 || this.breakerWatchers.size > 0;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (watched && !this.following) {
      // Exact: everything after what the idle subscription saw (so far) is read from here on.
      if (this.subscription && !this.subscription.everything) this.dispatched = Math.max(this.dispatched, this.subscription.log.progress());
      this.switching = this.switching.then(() => this.follow(true)).catch((e) => this.deps.logger.error({ err: e }, 'live hub could not follow the log'));
    } else if (!watched && this.following) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = null;
        this.switching = this.switching.then(() => this.follow(false)).catch((e) => this.deps.logger.error({ err: e }, 'live hub could not idle'));
      }, IDLE_AFTER_MS);
      this.idleTimer.unref();
    }
  }

  /** False while the hub's subscription is down (restarting). */
  get healthy(): boolean {
    return this.health?.healthy ?? false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    await this.switching;
    await this.subscription?.log.stop();
    this.health?.remove();
    for (const w of this.eventWatchers) w.channel.close();
    for (const w of this.breakerWatchers) w.channel.close();
    for (const set of this.progressWatchers.values()) for (const w of set) w.channel.close();
  }

  watchEvents(tenantId: string, filter: Readonly<{ notificationId?: string | null; userId?: string | null; types?: readonly string[] | null }>): AsyncIterableIterator<LiveEvent> {
    const watcher: EventWatcher = {
      tenantId,
      notificationId: filter.notificationId ?? null,
      userId: filter.userId ?? null,
      types: filter.types ? new Set(filter.types) : null,
      channel: new Channel<LiveEvent>(
        {
          mode: 'bounded',
          capacity: this.deps.queueCapacity ?? 10_000,
          dropped: (count) => ({ position: 0, type: 'EventsDropped', at: new Date(), notificationId: null, userId: null, dropped: count }),
        },
        () => {
          this.eventWatchers.delete(watcher);
          this.watchersChanged();
        },
      ),
    };
    this.eventWatchers.add(watcher);
    this.watchersChanged();
    return watcher.channel;
  }

  /** Breaker changes of the integrations of these owners (a tenant, `platform`; null: every owner), as they are recorded. */
  watchBreakers(owners: readonly string[] | null): AsyncIterableIterator<BreakerChange> {
    const watcher: BreakerWatcher = {
      owners: owners && new Set(owners),
      channel: new Channel<BreakerChange>(
        // A client this far behind reads the list again: the marker names no integration.
        { mode: 'bounded', capacity: 1_000, dropped: (count) => ({ owner: '', name: '', channel: '', state: 'closed', reason: `${count} changes dropped`, at: new Date(), lastFailure: null }) },
        () => {
          this.breakerWatchers.delete(watcher);
          this.watchersChanged();
        },
      ),
    };
    this.breakerWatchers.add(watcher);
    this.watchersChanged();
    return watcher.channel;
  }

  /** Snapshots of one read-model document (a notification), starting with the current one. */
  watchProgress<D extends NotificationDoc>(collection: string, docId: string, initial: D): AsyncIterableIterator<D> {
    const key = `${collection}\u0000${docId}`;
    const watcher: ProgressWatcher<D> = {
      channel: new Channel<D>({ mode: 'latest' }, () => {
        const set = this.progressWatchers.get(key);
        set?.delete(watcher as ProgressWatcher<unknown>);
        if (set?.size === 0) this.progressWatchers.delete(key);
        this.watchersChanged();
      }),
    };
    let set = this.progressWatchers.get(key);
    if (!set) this.progressWatchers.set(key, (set = new Set()));
    set.add(watcher as ProgressWatcher<unknown>);
    this.watchersChanged();
    watcher.channel.push(initial);
    return watcher.channel;
  }

  private dispatch(events: readonly RecordedEvent<AnyEvent>[]): void {
    for (const e of events) {
      const notificationId = field(e, 'notificationId');
      const userId = field(e, 'userId');
      if (notificationId !== null) {
        const key = `notifications\u0000${e.metadata.tenantId}:${notificationId}`;
        if (this.progressWatchers.has(key)) this.dirty.set(key, e.position);
      }
      if (e.type === 'ProviderCircuitChanged' && this.breakerWatchers.size > 0) {
        const d = e.data;
        const owner = d.owner ?? e.metadata.tenantId;
        const change: BreakerChange = { owner, name: d.provider, channel: d.channel, state: d.state, reason: d.reason, at: new Date(e.metadata.at), lastFailure: d.lastFailure ?? null };
        for (const w of this.breakerWatchers) if (w.owners === null || w.owners.has(owner)) w.channel.push(change);
      }
      if (this.eventWatchers.size === 0) continue;
      const live: LiveEvent = { position: e.position, type: e.type, at: new Date(e.metadata.at), notificationId, userId, dropped: null };
      // Delivery events are batches: they concern every user among their deliveries.
      const batch = (e.data as { deliveries?: readonly { userId?: unknown }[] }).deliveries;
      const users = userId === null && Array.isArray(batch) ? new Set(batch.map((d) => d.userId)) : null;
      for (const w of this.eventWatchers) {
        if (w.tenantId !== e.metadata.tenantId) continue;
        if (w.types !== null && !w.types.has(e.type)) continue;
        if (w.notificationId !== null && w.notificationId !== notificationId) continue;
        if (w.userId !== null && w.userId !== userId && !users?.has(w.userId)) continue;
        w.channel.push(w.userId !== null && userId === null ? { ...live, userId: w.userId } : live);
      }
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.dirty.size === 0) return;
    this.flushing = true;
    try {
      for (const [key, position] of [...this.dirty]) {
        const watchers = this.progressWatchers.get(key);
        if (!watchers) {
          this.dirty.delete(key);
          continue;
        }
        const [collection, docId] = key.split('\u0000') as [string, string];
        const doc = await this.deps.readStore.get<NotificationDoc & { id: string }>(collection, docId);
        if (!doc || doc.lastPosition < position) continue;
        if (this.dirty.get(key) === position) this.dirty.delete(key);
        for (const w of watchers) w.channel.push(doc);
      }
    } catch (e) {
      this.deps.logger.warn({ err: e }, 'live progress flush failed');
    } finally {
      this.flushing = false;
    }
  }
}
