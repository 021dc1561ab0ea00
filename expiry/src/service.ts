import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { LeaseStore } from '#platform/lease/port';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { processHealth, type ComponentHealth, type Health } from '#platform/health';
import { startProjections, type RunningProjections } from '#projections/runner';
import { SCHEDULE, scheduleReadModel, type ScheduleDocument } from './schedule';
import type { Shredded, Shredder } from './shredder';
import { DeliveryHistorySweeper } from './history';

export type ExpiryDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  leases: LeaseStore;
  shredder: Shredder;
  clock: Clock;
  logger: Logger;
  /** Unique per process: the lease holder's name. */
  instanceId: string;
  batchSize?: number;
  leaseTtlMs?: number;
  /** Called after each batch whose keys were destroyed (metrics, benchmarks). */
  onShredded?: (users: readonly Shredded[]) => void;
  /** Where the schedule's projection and the service report whether they work (default: the process's registry). */
  health?: Health;
  /** Backoff of the schedule projection's restarts after a store error (tests shorten it). */
  restartBackoff?: Readonly<{ baseMs: number; maxMs: number }>;
  /** The delivery history sweep: how often the leader runs it (default hourly) and its page size. */
  history?: Readonly<{ everyMs?: number; pageSize?: number }>;
}>;

const LEASE = 'consent-expiry';
const SCHEDULE_EVENTS = new Set(['UserRegistered', 'ConsentPeriodChanged', 'ConsentExpired', 'UserErasureRequested', 'UserDataShredded']);
/** The timer never sleeps longer than this, so a clock jump or a missed wake-up costs at most this. */
const MAX_SLEEP_MS = 30_000;
/** Histories are kept in days: an hour late costs nothing. */
const HISTORY_SWEEP_MS = 3_600_000;

/**
 * Destroys users' data when their consent ends. One instance at a time holds the lease; the
 * holder keeps one timer armed for the earliest due time in the schedule (its own projection),
 * re-arms it whenever the schedule changes, and works through everything due in batches.
 * Another instance takes over within one lease TTL when the holder dies.
 */
export class ExpiryService {
  private projections: RunningProjections | null = null;
  private timer: NodeJS.Timeout | null = null;
  private leaseTimer: NodeJS.Timeout | null = null;
  private holding = false;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = false;
  /** Set when due users could not be processed (changed under us): retry after a pause, not in a loop. */
  private stalled = false;
  private health: ComponentHealth | null = null;
  private readonly history: DeliveryHistorySweeper;
  private historyTimer: NodeJS.Timeout | null = null;
  private sweeping: Promise<number> | null = null;

  constructor(private readonly deps: ExpiryDeps) {
    this.history = new DeliveryHistorySweeper({
      readStore: deps.readStore,
      clock: deps.clock,
      logger: deps.logger,
      ...(deps.history?.pageSize ? { pageSize: deps.history.pageSize } : {}),
    });
  }

  /** False while the schedule's projection restarts after a failure, or the last run failed. */
  get healthy(): boolean {
    return (this.health?.healthy ?? false) && (this.projections?.healthy ?? false);
  }

  get isLeader(): boolean {
    return this.holding;
  }

  async start(): Promise<void> {
    const registry = this.deps.health ?? processHealth;
    this.health = registry.register('expiry');
    // The schedule is this role's own projection: a store error restarts it (from its checkpoint),
    // so users registered after the error are still scheduled.
    this.projections = await startProjections({
      eventStore: this.deps.eventStore,
      readStore: this.deps.readStore,
      models: [scheduleReadModel],
      health: registry.register('expiry-schedule'),
      ...(this.deps.restartBackoff ? { restartBackoff: this.deps.restartBackoff } : {}),
      // Only schedule changes can bring a due time closer; other events just move the checkpoint.
      onCommitted: (events) => {
        if (events.some((e) => SCHEDULE_EVENTS.has(e.type))) this.poke();
      },
      onError: (e) => this.deps.logger.error({ err: e }, 'consent schedule projection failed; restarting from its checkpoint'),
    });
    await this.renewLease();
    const ttl = this.deps.leaseTtlMs ?? 5_000;
    this.leaseTimer = setInterval(() => void this.renewLease(), Math.max(100, Math.floor(ttl / 3)));
    this.leaseTimer.unref();
    // Consent expiry's lease also decides who sweeps: one instance at a time, taken over with it.
    this.historyTimer = setInterval(() => this.sweepInBackground(), this.deps.history?.everyMs ?? HISTORY_SWEEP_MS);
    this.historyTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    if (this.historyTimer) clearInterval(this.historyTimer);
    await this.running;
    await this.sweeping?.catch(() => undefined);
    await this.projections?.stop();
    if (this.holding) await this.deps.leases.release(LEASE, this.deps.instanceId);
    this.holding = false;
    this.health?.remove();
  }

  /** Resolves when the schedule reflects the log up to `position`. */
  async caughtUp(position: number): Promise<void> {
    await this.projections?.caughtUp(position);
  }

  /** Runs now: everything due is processed before this resolves (when this instance leads). */
  async runDue(): Promise<void> {
    this.poke();
    while (this.running) await this.running;
  }

  /**
   * Removes delivery steps past their tenant's history (see DeliveryHistorySweeper), when this
   * instance leads. One sweep at a time: a call during one runs after it, with the clock as it is
   * then. Resolves with the entries removed.
   */
  async sweepHistory(): Promise<number> {
    while (this.sweeping) await this.sweeping.catch(() => 0);
    if (this.stopped || !this.holding) return 0;
    const sweep = this.history.sweep(() => !this.stopped && this.holding);
    this.sweeping = sweep;
    try {
      return await sweep;
    } finally {
      this.sweeping = null;
    }
  }

  private sweepInBackground(): void {
    this.sweepHistory().catch((e) => this.deps.logger.error({ err: e }, 'delivery history sweep failed; will retry at the next one'));
  }

  private async renewLease(): Promise<void> {
    if (this.stopped) return;
    try {
      const held = await this.deps.leases.acquire(LEASE, this.deps.instanceId, this.deps.leaseTtlMs ?? 5_000);
      const gained = held && !this.holding;
      if (gained) this.deps.logger.info({ instance: this.deps.instanceId }, 'consent expiry: leading');
      if (!held && this.holding) this.deps.logger.warn({ instance: this.deps.instanceId }, 'consent expiry: lease lost');
      this.holding = held;
      // A follower works when it can reach the lease; a leader's health is its last run's.
      if (held) this.poke();
      else this.health?.ok();
      // A new leader sweeps at once: instances restarted more often than hourly still sweep.
      if (gained) this.sweepInBackground();
    } catch (e) {
      this.holding = false;
      this.health?.failing(e);
      this.deps.logger.error({ err: e }, 'consent expiry: lease renewal failed');
    }
  }

  private poke(): void {
    if (this.stopped || !this.holding) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain()
      .then(
        () => this.health?.ok(),
        (e) => {
          // Retried: the lease renewal pokes again within a third of its TTL, and the timer below.
          this.health?.failing(e);
          this.deps.logger.error({ err: e }, 'consent expiry run failed; will retry');
        },
      )
      .finally(() => {
        this.running = null;
        if (this.again) {
          this.again = false;
          this.poke();
        } else {
          this.arm().catch((e) => {
            this.health?.failing(e);
            this.deps.logger.error({ err: e }, 'consent expiry: could not arm the timer; will retry');
            // Without a timer, try again soon rather than wait for the next lease renewal.
            this.retryLater();
          });
        }
      });
  }

  private async drain(): Promise<void> {
    for (;;) {
      if (this.stopped || !this.holding) return;
      const now = this.deps.clock.now().toISOString();
      // Most pokes come from registrations due far ahead: look at the earliest before reading a page.
      const first = await this.deps.readStore.find<ScheduleDocument>(SCHEDULE, {}, { limit: 1, sort: { field: 'dueAt', direction: 'asc' } });
      if (!first.items[0] || first.items[0].dueAt > now) return;
      const page = await this.deps.readStore.find<ScheduleDocument>(SCHEDULE, {}, { limit: this.deps.batchSize ?? 1000, sort: { field: 'dueAt', direction: 'asc' } });
      const due = page.items.filter((d) => d.dueAt <= now);
      if (due.length === 0) return;
      const shredded = await this.deps.shredder.shred(due, 'expire', { actor: 'system', requestId: `expiry-${now}` });
      if (shredded.length > 0) this.deps.onShredded?.(shredded);
      // The schedule drops shredded users through its projection; wait for it before reading again.
      await this.projections!.caughtUp(await this.deps.eventStore.headPosition());
      const remaining = await this.deps.readStore.getMany<ScheduleDocument>(SCHEDULE, due.map((d) => d.id));
      // Users still due after a run were changed under us (consent extended): retry after a pause.
      this.stalled = remaining.length === due.length && shredded.length === 0;
      if (this.stalled) return;
    }
  }

  private retryLater(): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poke(), 1000);
    this.timer.unref();
  }

  private async arm(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    if (this.stopped || !this.holding) return;
    const page = await this.deps.readStore.find<ScheduleDocument>(SCHEDULE, {}, { limit: 1, sort: { field: 'dueAt', direction: 'asc' } });
    const next = page.items[0];
    if (!next) return;
    const delay = Math.min(MAX_SLEEP_MS, Math.max(this.stalled ? 1000 : 0, Date.parse(next.dueAt) - this.deps.clock.now().getTime()));
    this.timer = setTimeout(() => this.poke(), delay);
    this.timer.unref();
  }
}
