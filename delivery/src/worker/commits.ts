import type { Consumer } from '#platform/bus/port';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import type { DeliveryMetrics } from '../metrics';
import type { Terminal } from '../recorder';
import type { Scheduler } from './scheduler';
import type { Message, Pending } from './state';

/**
 * Bus offsets, committed only when every delivery of a message (and of those before it in its
 * partition) has its terminal event in the log: a crash before that delivers the message again.
 */
export class Commits {
  private readonly messages = new Map<number, Message[]>();
  private consumer: Consumer | null = null;

  constructor(
    private readonly deps: Readonly<{
      clock: Clock;
      logger: Logger;
      metrics?: DeliveryMetrics;
      pending: Pending;
      scheduler: Scheduler;
    }>,
  ) {}

  attach(consumer: Consumer): void {
    this.consumer = consumer;
  }

  /** A message taken in, in offset order: `remaining` counts its deliveries without an outcome. */
  track(partition: number, offset: number, deliveries: number): Message {
    const message: Message = { partition, offset, remaining: deliveries };
    const list = this.messages.get(partition) ?? [];
    list.push(message);
    this.messages.set(partition, list);
    return message;
  }

  /** The partition went to another member: it commits from there on. */
  forget(partition: number): void {
    this.messages.delete(partition);
  }

  /** After the outcomes are in the log: forget the deliveries, release their messages' offsets. */
  settled(terminals: readonly Terminal[]): void {
    const { pending, metrics } = this.deps;
    const partitions = new Set<number>();
    for (const t of terminals) {
      const item = pending.active.get(t.ref.deliveryId);
      if (!item) continue;
      pending.active.delete(t.ref.deliveryId);
      item.message.remaining--;
      partitions.add(item.message.partition);
      metrics?.deliveries.inc({ outcome: t.status, channel: t.ref.channel, integration: t.provider ?? 'none', tenant: t.batch.tenantId });
      if (t.status === 'expired') metrics?.expired.inc({ channel: t.ref.channel, tenant: t.batch.tenantId });
    }
    for (const p of partitions) this.release(p);
    metrics?.queueDepth.set(this.deps.scheduler.depth);
    pending.released();
  }

  /** Commits the partition up to its last message whose deliveries all have their outcome. */
  release(partition: number): void {
    const list = this.messages.get(partition);
    if (!list || !this.consumer) return;
    let last: Message | null = null;
    while (list.length > 0 && list[0]!.remaining <= 0) last = list.shift()!;
    if (last && this.consumer) {
      void this.consumer.commit(partition, last.offset).catch((e) => this.deps.logger.warn({ err: e }, 'offset commit failed'));
    }
  }
}
