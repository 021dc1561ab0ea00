import { inSpan } from '#platform/tracing';
import type { ChannelCounts, DeliveryRef, DeliverySlicePlanned } from '#schema/events';
import { streams } from '#schema/streams';
import { partitionOf, shardsOf } from '#schema/sharding';
import { USERS, userDocId, type UserDocument } from '#projections/users/document';
import { listShardMembers } from '#projections/users/queries';
import { recipientDevices } from '../eligibility';
import { deliveryIdOf } from '../ids';
import type { Batch } from '../recorder';
import type { Commits } from './commits';
import type { Ownership } from './ownership';
import type { Scheduler } from './scheduler';
import type { Item, Pending, Slice, WorkerDeps } from './state';

/** Shard queries one page may make to fill itself: a small group's slice is planned in one page. */
const MAX_SHARDS_PER_PAGE = 64;
/** Shard queries a page makes at once, once shards come back short of what it needs. */
const MAX_SHARDS_AT_ONCE = 16;

type Cursor = Readonly<{ shard: number; after: string | null }>;

/** `<shard index>:<last user id>`, or the shard index alone at a shard's start. */
const encode = (c: Cursor): string => (c.after === null ? `${c.shard}` : `${c.shard}:${c.after}`);
const decode = (s: string | null): Cursor => {
  if (s === null) return { shard: 0, after: null };
  const colon = s.indexOf(':');
  return colon < 0 ? { shard: Number(s), after: null } : { shard: Number(s.slice(0, colon)), after: s.slice(colon + 1) };
};

type Page = Readonly<{ users: readonly UserDocument[]; missing: number; cursor: string | null }>;

/**
 * Plans this worker's slice of each send, one page at a time, when the scheduler reaches the
 * slice in deadline order and the queue has room: pages the users of its partition's shards from
 * the read store, keeps who may receive, records the page in the partition's log (the plan a
 * successor resumes from), then queues its deliveries. Nothing proportional to the audience
 * happens before the first page is sent, and no slice is planned ahead of a tighter deadline.
 */
export class SlicePlanner {
  private seq = 0;

  constructor(
    private readonly deps: Pick<WorkerDeps, 'readStore' | 'eventStore' | 'clock' | 'config' | 'logger' | 'readModelsCaughtUp' | 'metrics'> &
      Readonly<{ pending: Pending; scheduler: Scheduler; ownership: Ownership; commits: Commits }>,
  ) {}

  /** The items a slice already planned, in the log, without an outcome: queued before any new page. */
  resume(slice: Slice): void {
    const { notification } = slice;
    const items: Item[] = [];
    for (const ref of notification.plannedOpen.values()) {
      if (this.deps.pending.active.has(ref.deliveryId)) continue;
      items.push(this.item(slice, ref, notification.inFlightAtCrash.delete(ref.deliveryId)));
    }
    notification.plannedOpen.clear();
    this.queue(slice, items);
  }

  /** Plans the slice's next page and queues it; puts the slice back while pages remain. */
  async plan(slice: Slice): Promise<void> {
    if (!slice.notification.trace) return this.planPage(slice);
    return inSpan('delivery.plan-page', { parent: slice.notification.trace, attributes: { 'notify.tenant': slice.job.tenantId, 'messaging.destination.partition.id': String(slice.partition) } }, () => this.planPage(slice));
  }

  private async planPage(slice: Slice): Promise<void> {
    const { job, notification } = slice;
    if (!this.deps.ownership.owns(slice.partition)) return;
    // One catch-up per slice: the read models then hold every change accepted before the request;
    // later changes are honoured at send time as they reach them.
    if (!slice.caughtUp) {
      await this.deps.readModelsCaughtUp(job.requestedPosition);
      slice.caughtUp = true;
    }
    const page = await this.page(slice);
    const now = this.deps.clock.now().toISOString();
    const refs: DeliveryRef[] = [];
    const byChannel: Record<string, number> = {};
    const skipped: Record<string, number> = page.missing > 0 ? { 'unknown-user': page.missing } : {};
    let recipients = 0;
    for (const user of page.users) {
      const devices = recipientDevices(user, now);
      if (!devices.ok) {
        skipped[devices.reason] = (skipped[devices.reason] ?? 0) + 1;
        continue;
      }
      recipients++;
      for (const d of devices.value) {
        refs.push({ deliveryId: deliveryIdOf(job.tenantId, job.notificationId, user.userId, d.deviceId), userId: user.userId, deviceId: d.deviceId, channel: d.kind });
        byChannel[d.kind] = (byChannel[d.kind] ?? 0) + 1;
      }
    }
    const done = page.cursor === null;
    const planned: DeliverySlicePlanned = {
      type: 'DeliverySlicePlanned',
      data: {
        notificationId: job.notificationId,
        requestedPosition: job.requestedPosition,
        requestedAt: job.requestedAt,
        partition: slice.partition,
        cursor: page.cursor,
        done,
        recipients,
        byChannel: byChannel as ChannelCounts,
        skipped,
        deliveries: refs,
      },
    };
    // In the log before any of its deliveries is dispatched: a successor finds every planned delivery.
    await this.deps.eventStore.appendToStream(streams.deliveries(job.tenantId, job.notificationId, slice.partition), [
      { ...planned, metadata: { tenantId: job.tenantId, actor: 'system', requestId: `plan-${job.notificationId}`, at: now } },
    ], { expectedRevision: 'any' });
    for (const [channel, n] of Object.entries(byChannel)) this.deps.metrics?.deliveriesPlanned.inc({ tenant: job.tenantId, channel }, n);
    notification.cursor = page.cursor;
    notification.planned = done;
    this.queue(slice, refs.filter((r) => !this.deps.pending.active.has(r.deliveryId)).map((r) => this.item(slice, r, false)));
    if (done) {
      // The slice's own share of its bus message: it is committed once every delivery ended too.
      slice.message.remaining--;
      this.deps.commits.release(slice.partition);
    } else {
      this.deps.scheduler.enqueue(slice);
    }
    this.deps.scheduler.wake();
  }

  /** A slice in deadline order among the items: `seq` breaks ties in arrival order. */
  nextSeq(): number {
    return this.seq++;
  }

  private item(slice: Slice, ref: DeliveryRef, possiblyDuplicate: boolean): Item {
    const batch: Batch = { tenantId: slice.job.tenantId, notificationId: slice.job.notificationId, partition: slice.partition, requestedPosition: slice.job.requestedPosition, requestedAt: slice.job.requestedAt };
    return { ref, batch, deadline: slice.deadline, rank: slice.rank, seq: this.seq++, attempts: 0, notBefore: 0, possiblyDuplicate, lastReason: null, lastFailedOn: null, dispatched: false, message: slice.message, notification: slice.notification };
  }

  private queue(slice: Slice, items: readonly Item[]): void {
    slice.message.remaining += items.length;
    for (const item of items) {
      this.deps.pending.active.set(item.ref.deliveryId, item);
      this.deps.scheduler.enqueue(item);
    }
  }

  private async page(slice: Slice): Promise<Page> {
    const { job } = slice;
    const { readStore, config } = this.deps;
    if (job.target.kind === 'users') {
      const ids = job.target.userIds.filter((u) => partitionOf(u, config.partitions) === slice.partition);
      const users = ids.length === 0 ? [] : await readStore.getMany<UserDocument>(USERS, ids.map((u) => userDocId(job.tenantId, u)));
      return { users, missing: ids.length - users.length, cursor: null };
    }
    const { groupId } = job.target;
    const shards = shardsOf(slice.partition, config.partitions);
    let cursor = decode(slice.notification.cursor);
    const users: UserDocument[] = [];
    // One shard at first (a large group's page comes from one); once shards come back short, as
    // many at once as should fill the page: a small group's slice is not a round trip per shard.
    let perShard: number | null = null;
    for (let queries = 0; users.length < config.pageSize && cursor.shard < shards.length && queries < MAX_SHARDS_PER_PAGE; ) {
      const want = config.pageSize - users.length;
      const from = cursor;
      const width = perShard === null ? 1 : Math.max(1, Math.min(MAX_SHARDS_AT_ONCE, Math.ceil(want / Math.max(1, perShard)), shards.length - from.shard, MAX_SHARDS_PER_PAGE - queries));
      const found = await Promise.all(
        Array.from({ length: width }, (_, i) => listShardMembers(readStore, job.tenantId, groupId, shards[from.shard + i]!, { first: want, after: i === 0 ? from.after : null })),
      );
      queries += width;
      let whole = 0;
      let wholeShards = 0;
      for (const [i, page] of found.entries()) {
        // A shard that would overfill the page is read again by the next one, from its start.
        if (i > 0 && users.length + page.items.length > config.pageSize) break;
        users.push(...page.items);
        if (page.next !== null) {
          cursor = { shard: from.shard + i, after: page.next };
          break;
        }
        cursor = { shard: from.shard + i + 1, after: null };
        whole += page.items.length;
        wholeShards++;
      }
      if (wholeShards > 0) perShard = whole / wholeShards;
    }
    return { users, missing: 0, cursor: cursor.shard >= shards.length ? null : encode(cursor) };
  }
}
