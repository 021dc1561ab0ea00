import { extractTrace } from '#platform/tracing';
import type { DeliveryRef } from '#schema/events';
import { streams } from '#schema/streams';
import type { BusMessage } from '#platform/bus/port';
import { rankOf, type SliceJob } from '../job';
import type { Commits } from './commits';
import type { Ownership } from './ownership';
import type { Scheduler } from './scheduler';
import type { Notification, Pending, Slice, WorkerDeps } from './state';
import type { SlicePlanner } from './slices';

/** What each notification's partition already has in the log, loaded once per (partition, notification). */
export class NotificationStates {
  private readonly loaded = new Map<string, Promise<Notification>>();
  private stopped = false;

  constructor(private readonly deps: Pick<WorkerDeps, 'eventStore' | 'bus' | 'config'> & Readonly<{ handoverMs: number }>) {}

  get(job: SliceJob, partition: number): Promise<Notification> {
    const key = `${partition}\u0000${job.tenantId}\u0000${job.notificationId}`;
    let n = this.loaded.get(key);
    if (!n) {
      n = this.load(job, partition);
      this.loaded.set(key, n);
      n.catch(() => this.loaded.delete(key));
    }
    return n;
  }

  /** Partitions newly assigned may have been served by a worker that died: their state is reloaded. */
  reload(partitions: readonly number[]): void {
    for (const key of [...this.loaded.keys()]) {
      if (partitions.includes(Number(key.slice(0, key.indexOf('\u0000'))))) this.loaded.delete(key);
    }
  }

  stop(): void {
    this.stopped = true;
  }

  private async load(job: SliceJob, partition: number): Promise<Notification> {
    const { eventStore } = this.deps;
    const [requested] = await eventStore.readStream(streams.notification(job.tenantId, job.notificationId), { maxCount: 1 });
    if (!requested || requested.type !== 'NotificationRequested') throw new Error(`notification ${job.notificationId} not found`);
    const dispatched = new Set<string>();
    const plannedOpen = new Map<string, DeliveryRef>();
    let cursor: string | null = null;
    let planned = false;
    let seenPosition = 0;
    // What this partition already has in the log (after a restart or a takeover): outcomes go
    // into the filter; intents without an outcome were in flight when their owner lost them.
    const stream = streams.deliveries(job.tenantId, job.notificationId, partition);
    let from = 0;
    const readOn = async (): Promise<void> => {
      for (;;) {
        const events = await eventStore.readStream(stream, { fromRevision: from, maxCount: 200 });
        for (const e of events) {
          seenPosition = Math.max(seenPosition, e.position);
          const entries = (e.data as { deliveries: readonly DeliveryRef[] }).deliveries;
          if (e.type === 'DeliverySlicePlanned') {
            for (const d of entries) plannedOpen.set(d.deliveryId, { deliveryId: d.deliveryId, userId: d.userId, deviceId: d.deviceId, channel: d.channel });
            cursor = e.data.cursor;
            planned = e.data.done;
          } else if (e.type === 'DeliveryDispatched') for (const d of entries) dispatched.add(d.deliveryId);
          else if (e.type === 'DeliverySucceeded' || e.type === 'DeliveryFailed' || e.type === 'DeliveryExpired') {
            for (const d of entries) {
              dispatched.delete(d.deliveryId);
              plannedOpen.delete(d.deliveryId);
            }
          }
        }
        if (events.length > 0) from = events.at(-1)!.revision + 1;
        if (events.length < 200) return;
      }
    };
    await readOn();
    // A member that lost this partition in a rebalance is still finishing its sends: their
    // outcomes come within the handover time. Only a dead owner's stay unknown (sent again, flagged).
    if (this.deps.bus.sharedGroups) {
      const until = Date.now() + this.deps.handoverMs;
      while (dispatched.size > 0 && Date.now() < until && !this.stopped) {
        await new Promise((r) => setTimeout(r, 100));
        await readOn();
      }
    }
    return { text: requested.data.text, inFlightAtCrash: dispatched, seenPosition, plannedOpen, cursor, planned };
  }
}

/**
 * Takes slices off the bus, once each: a slice already held (a message delivered again) adds
 * nothing; a slice taken over after a crash first queues what its predecessor planned and did
 * not finish, then plans on from where the log says it stopped.
 */
export class Intake {
  private readonly slices = new Map<string, Slice>();
  private stopped = false;

  constructor(
    private readonly deps: Pick<WorkerDeps, 'config' | 'metrics'> &
      Readonly<{ states: NotificationStates; pending: Pending; scheduler: Scheduler; ownership: Ownership; commits: Commits; planner: SlicePlanner }>,
  ) {}

  stop(): void {
    this.stopped = true;
    this.deps.pending.unblock();
  }

  /** Slices of partitions taken away: their new owner takes them from the log. */
  forget(partitions: readonly number[]): void {
    for (const [key, slice] of this.slices) if (partitions.includes(slice.partition)) this.slices.delete(key);
  }

  async accept(batch: readonly BusMessage[]): Promise<void> {
    const { scheduler, commits, planner } = this.deps;
    for (const m of batch) {
      // Taken away while this batch waited: the new owner reads it again.
      if (!this.deps.ownership.owns(m.partition)) return;
      const job = m.value as SliceJob;
      const key = `${m.partition}\u0000${job.tenantId}\u0000${job.notificationId}`;
      const held = this.slices.get(key);
      if (job.kind !== 'slice' || (held && held.message.remaining > 0)) {
        // Not a slice (a message of an older version), or one held already: nothing more to do.
        commits.track(m.partition, m.offset, 0);
        commits.release(m.partition);
        continue;
      }
      const message = commits.track(m.partition, m.offset, 1);
      const notification = await this.deps.states.get(job, m.partition);
      if (m.headers?.['traceparent']) notification.trace = extractTrace(m.headers);
      const slice: Slice = { key, job, partition: m.partition, deadline: Date.parse(job.deadline), rank: rankOf(job), seq: planner.nextSeq(), message, notification, caughtUp: false };
      this.slices.set(key, slice);
      planner.resume(slice);
      if (notification.planned) {
        message.remaining--;
        commits.release(m.partition);
      } else {
        scheduler.enqueue(slice);
      }
      scheduler.wake();
      // No wait for room: a slice holds nothing until a page of it is planned, and pages are
      // planned only as the queue drains, so a new send is taken in at once, whatever is queued.
    }
    this.deps.metrics?.queueDepth.set(scheduler.depth);
  }
}
