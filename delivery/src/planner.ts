import type { ChannelCounts, DeliveryRef, NotificationRequested, RecordedEvent } from '#schema/events';
import { streams } from '#schema/streams';
import type { EventStore, Subscription } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { JobBus, OutgoingMessage } from '#platform/bus/port';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { failpoint } from '#platform/failpoints';
import { handleCommand, load } from '#command/handler';
import { notificationDecider } from '#command/notification/decider';
import { USERS, userDocId, type UserDocument } from '#projections/users/document';
import { listUsers } from '#projections/users/queries';
import { NOTIFICATIONS, type NotificationDocument } from '#projections/notifications/document';
import { TIMELINE, type TimelineEntryDocument } from '#projections/timeline/document';
import { timelineReadModel } from '#projections/timeline/evolve';
import { checkpointName } from '#projections/read-model';
import type { DeliveryConfig } from './config';
import { DELIVERY_TOPIC, deliveryIdOf, partitionOf } from './ids';
import type { DeliveryJob } from './job';
import { recipientDevices, type Ineligibility } from './eligibility';

const TIMELINE_CHECKPOINT = checkpointName(timelineReadModel);

export type PlannerDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  bus: JobBus;
  clock: Clock;
  logger: Logger;
  config: DeliveryConfig;
}>;

const CHECKPOINT = 'planner';
/** The cursor recorded with the last page: planning only has to finish. */
const END = '$end';

type Page = Readonly<{ users: readonly UserDocument[]; missing: number; next: string | null }>;

/**
 * Fans each notification out: pages its recipients from the users read model (never the whole
 * group in memory), skips who may not receive, and puts delivery jobs on the bus, one message per
 * partition per page. After each page it records its cursor in the notification's stream, so a
 * crash resumes at the page it was on (a page published twice is deduplicated by the workers).
 * It also completes notifications whose deliveries have all ended.
 */
export class Planner {
  private subscription: Subscription | null = null;
  private completer: NodeJS.Timeout | null = null;
  private completing = false;
  private stopped = false;

  constructor(private readonly deps: PlannerDeps) {}

  async start(): Promise<void> {
    await this.deps.bus.ensureTopic(DELIVERY_TOPIC, this.deps.config.partitions);
    let checkpoint = await this.deps.readStore.checkpoint(CHECKPOINT);
    this.subscription = this.deps.eventStore.subscribe({
      after: checkpoint ?? 0,
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
      onError: (e) => this.deps.logger.error({ err: e }, 'planner stopped'),
    });
    this.completer = setInterval(() => void this.completeFinished(), 250);
    this.completer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.completer) clearInterval(this.completer);
    await this.subscription?.stop();
  }

  private async page(request: NotificationRequested['data'], tenantId: string, cursor: string | null): Promise<Page> {
    if (request.target.kind === 'users') {
      const ids = request.target.userIds.map((u) => userDocId(tenantId, u));
      const users = await this.deps.readStore.getMany<UserDocument>(USERS, ids);
      return { users, missing: ids.length - users.length, next: null };
    }
    const page = await listUsers(this.deps.readStore, tenantId, { groupId: request.target.groupId, first: this.deps.config.pageSize, after: cursor });
    return { users: page.items, missing: 0, next: page.next };
  }

  /**
   * A bus or store that is away (a broker restarting) must not stop fan-out for good: planning
   * resumes from the page it recorded last, so it is simply tried again, with backoff.
   */
  private async planWithRetries(event: RecordedEvent<NotificationRequested>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.plan(event);
      } catch (e) {
        if (this.stopped) throw e;
        const waitMs = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
        this.deps.logger.warn({ err: e, notificationId: event.data.notificationId, attempt, waitMs }, 'planning failed; trying again');
        await new Promise((r) => setTimeout(r, waitMs));
      }
    }
  }

  async plan(event: RecordedEvent<NotificationRequested>): Promise<void> {
    const tenantId = event.metadata.tenantId;
    const request = event.data;
    const stream = streams.notification(tenantId, request.notificationId);
    const { state } = await load(this.deps.eventStore, stream, notificationDecider);
    if (state.status === 'None' || state.status === 'Planned' || state.status === 'Completed') return;
    const meta = () => ({ tenantId, actor: 'system', requestId: `plan-${request.notificationId}`, at: this.deps.clock.now().toISOString() });
    let cursor = state.status === 'Planning' ? state.planning.cursor : null;
    const { partitions } = this.deps.config;
    while (cursor !== END && !this.stopped) {
      const page = await this.page(request, tenantId, cursor);
      const now = this.deps.clock.now().toISOString();
      const skipped: Record<string, number> = page.missing > 0 ? { ['unknown-user' satisfies Ineligibility]: page.missing } : {};
      const byChannel: Record<string, number> = {};
      const byPartition = new Map<number, DeliveryRef[]>();
      let recipients = 0;
      let deliveries = 0;
      for (const user of page.users) {
        const devices = recipientDevices(user, now);
        if (!devices.ok) {
          skipped[devices.reason] = (skipped[devices.reason] ?? 0) + 1;
          continue;
        }
        recipients++;
        const partition = partitionOf(user.userId, partitions);
        const list = byPartition.get(partition) ?? [];
        for (const d of devices.value) {
          list.push({ deliveryId: deliveryIdOf(tenantId, request.notificationId, user.userId, d.deviceId), userId: user.userId, deviceId: d.deviceId, channel: d.kind });
          byChannel[d.kind] = (byChannel[d.kind] ?? 0) + 1;
          deliveries++;
        }
        byPartition.set(partition, list);
      }
      const messages: OutgoingMessage[] = [...byPartition].map(([partition, refs]) => {
        const job: DeliveryJob = { tenantId, notificationId: request.notificationId, requestedPosition: event.position, requestedAt: request.requestedAt, deadline: request.deadline, deliveries: refs };
        return { partition, key: request.notificationId, value: job };
      });
      await this.deps.bus.publish(DELIVERY_TOPIC, messages);
      failpoint('planner:after-publish');
      const next = page.next ?? END;
      await handleCommand(this.deps.eventStore, stream, notificationDecider, {
        type: 'RecordPlanningProgress',
        data: { notificationId: request.notificationId, cursor: next, recipients, deliveries, byChannel: byChannel as ChannelCounts, skipped },
        now: this.deps.clock.now(),
      }, meta());
      cursor = next;
    }
    if (this.stopped) return;
    await handleCommand(this.deps.eventStore, stream, notificationDecider, { type: 'FinishPlanning', data: { notificationId: request.notificationId }, now: this.deps.clock.now() }, meta());
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
          // On a store without transactions a commit's documents land one collection at a time:
          // count the reach only once the timeline's checkpoint says all of it is there.
          if (((await this.deps.readStore.checkpoint(TIMELINE_CHECKPOINT)) ?? 0) < n.lastPosition) continue;
          await handleCommand(this.deps.eventStore, streams.notification(n.tenantId, n.notificationId), notificationDecider, {
            type: 'CompleteNotification',
            data: { notificationId: n.notificationId, succeeded: p.succeeded, failed: p.failed, expired: p.expired, reachedUsers: await this.reachedUsers(n) },
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

  /** Users with at least one successful delivery, counted exactly: ledger entries sort by user. */
  private async reachedUsers(n: NotificationDocument): Promise<number> {
    let count = 0;
    let last: string | null = null;
    let after: string | undefined;
    for (;;) {
      const page = await this.deps.readStore.find<TimelineEntryDocument>(TIMELINE, { notificationId: n.notificationId, status: 'succeeded' }, { limit: 5000, ...(after ? { after } : {}) });
      for (const d of page.items) {
        if (d.tenantId !== n.tenantId || d.userId === last) continue;
        last = d.userId;
        count++;
      }
      if (!page.next) return count;
      after = page.next;
    }
  }
}
