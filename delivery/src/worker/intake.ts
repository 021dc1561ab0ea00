import type { DeliveryRef } from '#schema/events';
import { streams } from '#schema/streams';
import type { BusMessage } from '#platform/bus/port';
import { BloomFilter } from '#platform/sketches/bloom';
import { TIMELINE, deliveryEntryId, type TimelineEntryDocument } from '#projections/timeline/document';
import type { DeliveryJob } from '../job';
import type { Batch, Recorder } from '../recorder';
import type { Commits } from './commits';
import type { Ownership } from './ownership';
import type { Scheduler } from './scheduler';
import type { Item, Notification, Pending, WorkerDeps } from './state';

const TERMINAL = new Set(['succeeded', 'failed', 'expired']);

/** What each notification's partition already has in the log, loaded once per (partition, notification). */
export class NotificationStates {
  private readonly loaded = new Map<string, Promise<Notification>>();
  private stopped = false;

  constructor(private readonly deps: Pick<WorkerDeps, 'eventStore' | 'bus' | 'config'> & Readonly<{ handoverMs: number }>) {}

  get(job: DeliveryJob, partition: number): Promise<Notification> {
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

  private async load(job: DeliveryJob, partition: number): Promise<Notification> {
    const { eventStore, config } = this.deps;
    const [requested] = await eventStore.readStream(streams.notification(job.tenantId, job.notificationId), { maxCount: 1 });
    if (!requested || requested.type !== 'NotificationRequested') throw new Error(`notification ${job.notificationId} not found`);
    const bloom = new BloomFilter(Math.max(65_536, Math.ceil(4_000_000 / config.partitions)), 0.01);
    const dispatched = new Set<string>();
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
          if (e.type === 'DeliveryDispatched') for (const d of entries) dispatched.add(d.deliveryId);
          else if (e.type === 'DeliverySucceeded' || e.type === 'DeliveryFailed' || e.type === 'DeliveryExpired') {
            for (const d of entries) {
              bloom.add(d.deliveryId);
              dispatched.delete(d.deliveryId);
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
    return { text: requested.data.text, bloom, inFlightAtCrash: dispatched, seenPosition };
  }
}

/**
 * Takes delivery jobs off the bus into the queue, once each: a delivery already held is dropped,
 * and one the log may hold an outcome for (a replayed job) is checked in the ledger.
 */
export class Intake {
  private seq = 0;
  private stopped = false;

  constructor(
    private readonly deps: Pick<WorkerDeps, 'readStore' | 'config' | 'metrics' | 'readModelsCaughtUp'> &
      Readonly<{ states: NotificationStates; pending: Pending; scheduler: Scheduler; ownership: Ownership; commits: Commits; recorder: Recorder }>,
  ) {}

  stop(): void {
    this.stopped = true;
    this.deps.pending.unblock();
  }

  async accept(batch: readonly BusMessage[]): Promise<void> {
    const { pending, scheduler, commits } = this.deps;
    for (const m of batch) {
      // Taken away while this batch waited for room: the new owner reads it again.
      if (!this.deps.ownership.owns(m.partition)) return;
      const job = m.value as DeliveryJob;
      const message = commits.track(m.partition, m.offset, job.deliveries.length);
      const notification = await this.deps.states.get(job, m.partition);
      const b: Batch = { tenantId: job.tenantId, notificationId: job.notificationId, partition: m.partition, requestedPosition: job.requestedPosition, requestedAt: job.requestedAt };
      const deadline = Date.parse(job.deadline);
      for (const ref of job.deliveries) {
        if (pending.active.has(ref.deliveryId)) {
          message.remaining--;
          continue;
        }
        // Sent before a crash, outcome unknown: send again, flagged (its first send may have landed).
        const possiblyDuplicate = notification.inFlightAtCrash.delete(ref.deliveryId);
        if (!possiblyDuplicate && notification.bloom.mightContain(ref.deliveryId)) {
          await this.deps.readModelsCaughtUp(Math.max(this.deps.recorder.lastPosition, notification.seenPosition));
          const entry = await this.deps.readStore.get<TimelineEntryDocument>(TIMELINE, deliveryEntryId(job.tenantId, ref.userId, job.requestedPosition, ref.deviceId));
          if (entry?.status && TERMINAL.has(entry.status)) {
            message.remaining--;
            continue;
          }
        }
        const item: Item = { ref, batch: b, deadline, seq: this.seq++, attempts: 0, notBefore: 0, possiblyDuplicate, lastReason: null, dispatched: false, message, notification };
        pending.active.set(ref.deliveryId, item);
        scheduler.enqueue(item);
      }
      commits.release(m.partition);
      scheduler.wake();
      while (!this.stopped && pending.full) await pending.room();
    }
    this.deps.metrics?.queueDepth.set(scheduler.depth);
  }
}
