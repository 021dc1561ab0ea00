import type { NotificationRequested, RecordedEvent } from '#schema/events';
import { streams } from '#schema/streams';
import type { EventStore } from '#platform/event-store/port';
import { followLog, type FollowedLog } from '#platform/event-store/follow';
import { processHealth, type Health } from '#platform/health';
import type { ReadStore } from '#platform/read-store/port';
import type { JobBus, OutgoingMessage } from '#platform/bus/port';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { failpoint } from '#platform/failpoints';
import { handleCommand, load } from '#command/handler';
import { notificationDecider } from '#command/notification/decider';
import { NOTIFICATIONS, type NotificationDocument } from '#projections/notifications/document';
import type { DeliveryConfig } from './config';
import { DELIVERY_TOPIC } from './ids';
import type { SliceJob } from './job';
import { countReachedUsers } from './reach';
import type { DeliveryMetrics } from './metrics';
import { extractTrace, injectTrace, inSpan, SpanKind } from '#platform/tracing';


export type PlannerDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  bus: JobBus;
  clock: Clock;
  logger: Logger;
  config: DeliveryConfig;
  /** Where the planner reports whether its subscription works (default: the process's registry). */
  health?: Health;
  metrics?: DeliveryMetrics;
}>;

const CHECKPOINT = 'planner';

/**
 * Cuts each requested notification into slices, one per bus partition (the partitions' owners
 * plan and send them), and completes notifications whose slices are planned and whose every
 * delivery ended.
 */
export class Planner {
  private subscription: FollowedLog | null = null;
  private completer: NodeJS.Timeout | null = null;
  private completing = false;
  private stopped = false;

  constructor(private readonly deps: PlannerDeps) {}

  async start(): Promise<void> {
    await this.deps.bus.ensureTopic(DELIVERY_TOPIC, this.deps.config.partitions);
    let checkpoint: number | null = null;
    // A store error ends a subscription; the planner then resumes from its stored checkpoint
    // (with backoff, unhealthy meanwhile) instead of never planning again.
    this.subscription = await followLog({
      eventStore: this.deps.eventStore,
      health: (this.deps.health ?? processHealth).register('planner'),
      resumeAfter: async () => {
        checkpoint = await this.deps.readStore.checkpoint(CHECKPOINT);
        return checkpoint ?? 0;
      },
      types: ['NotificationRequested'],
      batchSize: 10,
      handler: async (events) => {
        for (const e of events) {
          if (this.stopped) return;
          await this.planWithRetries(e as RecordedEvent<NotificationRequested>);
          await this.deps.readStore.commit({ checkpoints: [{ name: CHECKPOINT, expected: checkpoint, next: e.position }], changes: [] });
          checkpoint = e.position;
        }
      },
      onFailure: (e, failures, waitMs) => this.deps.logger.error({ err: e, failures, waitMs }, 'planner subscription failed; resuming from its checkpoint'),
    });
    this.completer = setInterval(() => void this.completeFinished(), 250);
    this.completer.unref();
  }

  /** False while the planner's subscription is down (restarting). */
  get healthy(): boolean {
    return this.subscription?.healthy ?? false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.completer) clearInterval(this.completer);
    await this.subscription?.stop();
  }

  /**
   * A bus or store that is away (a broker restarting) must not stop fan-out for good: slicing is
   * idempotent (workers hold a slice once), so it is simply tried again, with backoff.
   */
  private async planWithRetries(event: RecordedEvent<NotificationRequested>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.plan(event);
      } catch (e) {
        if (this.stopped) throw e;
        const waitMs = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
        this.deps.logger.warn({ err: e, notificationId: event.data.notificationId, attempt, waitMs }, 'slicing failed; trying again');
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  /**
   * Cuts a notification into one slice per bus partition: a message each, which the partition's
   * owner plans page by page. Nothing here is proportional to the audience, so every
   * notification's planning starts at once, whatever the sizes of the ones before it.
   */
  async plan(event: RecordedEvent<NotificationRequested>): Promise<void> {
    // The send's trace continues from the request that appended the event.
    return inSpan('planner.slice', { parent: extractTrace(event.metadata), attributes: { 'notify.tenant': event.metadata.tenantId } }, () => this.slice(event));
  }

  private async slice(event: RecordedEvent<NotificationRequested>): Promise<void> {
    const tenantId = event.metadata.tenantId;
    const request = event.data;
    const stream = streams.notification(tenantId, request.notificationId);
    const { state } = await load(this.deps.eventStore, stream, notificationDecider);
    // Sliced already, or a send of a version before slices (planned by pages): nothing to do.
    if (state.status !== 'Requested') return;
    const { partitions } = this.deps.config;
    const job: SliceJob = { kind: 'slice', tenantId, notificationId: request.notificationId, requestedPosition: event.position, requestedAt: request.requestedAt, deadline: request.deadline, target: request.target, ...(request.admission?.fitsDeadline === false ? { bestEffort: true as const } : {}) };
    await inSpan('bus.publish', { kind: SpanKind.PRODUCER, attributes: { 'messaging.destination.name': DELIVERY_TOPIC } }, async () => {
      // Headers only while tracing: without them the worker adds no span of its own.
      const headers = injectTrace();
      const traced = headers['traceparent'] ? { headers } : {};
      const messages: OutgoingMessage[] = Array.from({ length: partitions }, (_, partition) => ({ partition, key: request.notificationId, value: job, ...traced }));
      await this.deps.bus.publish(DELIVERY_TOPIC, messages);
    });
    this.deps.metrics?.notificationsSliced.inc({ tenant: tenantId });
    failpoint('planner:after-publish');
    await handleCommand(this.deps.eventStore, stream, notificationDecider,
      { type: 'SliceNotification', data: { notificationId: request.notificationId, partitions }, now: this.deps.clock.now() },
      { tenantId, actor: 'system', requestId: `plan-${request.notificationId}`, at: this.deps.clock.now().toISOString() });
  }

  /** Notifications whose every delivery ended get NotificationCompleted, with the exact reach. */
  async completeFinished(): Promise<void> {
    if (this.completing || this.stopped) return;
    this.completing = true;
    try {
      let after: string | undefined;
      for (;;) {
        const page = await this.deps.readStore.find<NotificationDocument>(NOTIFICATIONS, { status: 'DELIVERING' }, { limit: 100, ...(after ? { after } : {}) });
        for (const n of page.items) {
          const p = n.progress;
          if (p.succeeded + p.failed + p.expired < p.total) continue;
          // Counted from the send's own streams: the timeline may be minutes behind a flood of sends.
          const reachedUsers = await this.reachedUsers(n);
          await handleCommand(this.deps.eventStore, streams.notification(n.tenantId, n.notificationId), notificationDecider, {
            type: 'CompleteNotification',
            data: { notificationId: n.notificationId, succeeded: p.succeeded, failed: p.failed, expired: p.expired, reachedUsers },
            now: this.deps.clock.now(),
          }, { tenantId: n.tenantId, actor: 'system', requestId: `complete-${n.notificationId}`, at: this.deps.clock.now().toISOString() });
        }
        if (!page.next) break;
        after = page.next;
      }
    } catch (e) {
      this.deps.logger.warn({ err: e }, 'completing notifications failed; will retry');
    } finally {
      this.completing = false;
    }
  }

  /** Users with at least one successful delivery, from the send's own delivery streams. */
  private async reachedUsers(n: NotificationDocument): Promise<number> {
    const sliced = (await this.deps.eventStore.readStream(streams.notification(n.tenantId, n.notificationId))).find((e) => e.type === 'NotificationSliced');
    const partitions = (sliced?.data as { partitions?: number } | undefined)?.partitions ?? this.deps.config.partitions;
    return countReachedUsers(this.deps.eventStore, { tenantId: n.tenantId, notificationId: n.notificationId, partitions, deliveries: n.progress.total });
  }
}
