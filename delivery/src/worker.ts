import type { DeliveryRef, RecordedEvent, AnyEvent } from '#schema/events';
import { streams, userKeyId } from '#schema/streams';
import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { BusMessage, Consumer, JobBus } from '#platform/bus/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { BloomFilter } from '#platform/sketches/bloom';
import { failpoint } from '#platform/failpoints';
import { USERS, userDocId, type UserDocument } from '#projections/users/document';
import { TIMELINE, deliveryEntryId, type TimelineEntryDocument } from '#projections/timeline/document';
import type { DeliveryConfig } from './config';
import { MinHeap } from './heap';
import { DELIVERY_GROUP, DELIVERY_TOPIC } from './ids';
import type { OutboundMessage } from './providers/port';
import type { ProviderRouter } from './router';
import { Recorder, type Batch, type Terminal } from './recorder';
import type { DeliveryMetrics } from './metrics';

/** What the planner puts on the bus: a batch of deliveries of one notification, one partition. */
export type DeliveryJob = Readonly<{
  tenantId: string;
  notificationId: string;
  requestedPosition: number;
  requestedAt: string;
  deadline: string;
  deliveries: readonly DeliveryRef[];
}>;

type Message = { partition: number; offset: number; remaining: number };

/** One notification's state for one partition: the partition's owner alone writes its delivery stream. */
type Notification = {
  text: string;
  /** "Maybe recorded already": a miss means certainly new, a hit is checked in the ledger. */
  bloom: BloomFilter;
  /** Handed to a provider before a crash with no outcome logged: bounded by the in-flight limit. */
  inFlightAtCrash: Set<string>;
  /** Position of the last event read from the partition's log: the read models must reach it before being asked. */
  seenPosition: number;
};

type Item = {
  ref: DeliveryRef;
  batch: Batch;
  deadline: number;
  seq: number;
  attempts: number;
  notBefore: number;
  possiblyDuplicate: boolean;
  lastReason: string | null;
  /** Its DeliveryDispatched intent is in the log (written once, before the first send). */
  dispatched: boolean;
  message: Message;
  notification: Notification;
};

export type WorkerDeps = Readonly<{
  bus: JobBus;
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  router: ProviderRouter;
  clock: Clock;
  logger: Logger;
  config: DeliveryConfig;
  metrics?: DeliveryMetrics;
  /** Resolves once the read models (users, the delivery ledger) reflect the log up to `position`. */
  readModelsCaughtUp: (position: number) => Promise<void>;
  /** How long a partition gained from a live member may take to finish its sends (shared groups only). */
  handoverMs?: number;
  /**
   * Dispatch rounds that may wait for the read models at once (default 1). Where the projections
   * run in another process that wait is a projection cycle, and overlapping rounds keep sending.
   */
  dispatchRounds?: number;
}>;

/** Longer than any provider call may take (their timeouts), plus a flush. */
const DEFAULT_HANDOVER_MS = 12_000;

const TERMINAL = new Set(['succeeded', 'failed', 'expired']);

/**
 * Takes delivery jobs from its bus partitions and sends them, earliest deadline first across
 * tenants, within each provider's quota and concurrency; retries transient failures with
 * backoff and jitter while the deadline allows; records every step in batched events; commits a
 * bus offset only when every delivery of the message has its terminal event in the log.
 */
export class DeliveryWorker {
  private readonly queue = new MinHeap<Item>((a, b) => a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq));
  private readonly delayed = new MinHeap<Item>((a, b) => a.notBefore < b.notBefore);
  /** Deliveries queued, delayed or in flight: a second copy of one (a replayed job) is dropped. */
  private readonly active = new Map<string, Item>();
  private readonly notifications = new Map<string, Promise<Notification>>();
  private readonly messages = new Map<number, Message[]>();
  private readonly recorder: Recorder;
  private consumer: Consumer | null = null;
  /** Dispatch rounds between taking their items and handing them to providers. */
  private rounds = 0;
  private seq = 0;
  private stopped = false;
  private wake: (() => void) | null = null;
  private space: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  private readonly sends = new Set<Promise<void>>();
  /** Partitions this worker owns: it sends nothing of another's, not even what it has queued. */
  private readonly owned = new Set<number>();
  /** Items from their dispatch round until their outcome (or until dropped): the in-flight count, and what a revocation waits for. */
  private readonly sending = new Set<Item>();
  /** Set from the start of a rebalance to its end: nothing new goes to a provider meanwhile. */
  private rebalance: { done: Promise<void>; end: () => void } | null = null;

  constructor(private readonly deps: WorkerDeps) {
    this.recorder = new Recorder({
      eventStore: deps.eventStore,
      flushMs: deps.config.flushMs,
      now: () => deps.clock.now(),
      onFlushed: (terminals) => this.settled(terminals),
      onError: (e) => {
        deps.logger.error({ err: e }, 'recording delivery outcomes failed; stopping the worker (jobs will be delivered again)');
        void this.stop();
      },
    });
  }

  get depth(): number {
    return this.queue.size + this.delayed.size;
  }

  async start(): Promise<void> {
    await this.deps.bus.ensureTopic(DELIVERY_TOPIC, this.deps.config.partitions);
    // Outcomes appended before a restart must be in the ledger before jobs are checked against it.
    await this.deps.readModelsCaughtUp(await this.deps.eventStore.headPosition());
    this.loop = this.dispatchLoop();
    this.consumer = await this.deps.bus.consume({
      topic: DELIVERY_TOPIC,
      group: DELIVERY_GROUP,
      handler: (messages) => this.accept(messages),
      onRebalancing: () => this.rebalancing(),
      onAssigned: (partitions) => this.assigned(partitions),
      onRevoked: (partitions) => this.revoked(partitions),
      onError: (e) => this.deps.logger.error({ err: e }, 'delivery consumer failed'),
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    this.space?.();
    await this.consumer?.stop();
    await this.loop;
    // A round that finishes starts its sends: wait until none is left.
    while (this.sends.size > 0) await Promise.all([...this.sends]);
    await this.recorder.close();
  }

  // ---- intake ------------------------------------------------------------------------------

  private notification(job: DeliveryJob, partition: number): Promise<Notification> {
    const key = `${partition}\u0000${job.tenantId}\u0000${job.notificationId}`;
    let n = this.notifications.get(key);
    if (!n) {
      n = this.loadNotification(job, partition);
      this.notifications.set(key, n);
      n.catch(() => this.notifications.delete(key));
    }
    return n;
  }

  /** Partitions newly assigned may have been served by a worker that died: their state is reloaded. */
  private assigned(partitions: readonly number[]): void {
    for (const p of partitions) this.owned.add(p);
    this.deps.logger.info({ gained: partitions, owned: [...this.owned].sort((a, b) => a - b) }, 'delivery: partitions assigned');
    for (const key of [...this.notifications.keys()]) {
      if (partitions.includes(Number(key.slice(0, key.indexOf('\u0000'))))) this.notifications.delete(key);
    }
    this.endRebalance();
  }

  private rebalancing(): void {
    if (this.rebalance) return;
    this.deps.logger.info({ inFlight: this.sending.size, queued: this.depth }, 'delivery: rebalance began; holding new sends');
    let end!: () => void;
    const done = new Promise<void>((resolve) => (end = resolve));
    this.rebalance = { done, end };
  }

  private endRebalance(): void {
    const r = this.rebalance;
    this.rebalance = null;
    r?.end();
    this.wake?.();
  }

  /**
   * Partitions taken away: what is queued for them is dropped (their new owner reads it again
   * from the last commit), what is in flight finishes and its outcomes are appended, so the new
   * owner finds them in the log and sends none of them twice.
   */
  private async revoked(partitions: readonly number[]): Promise<void> {
    const lost = new Set(partitions);
    for (const p of lost) {
      this.owned.delete(p);
      this.messages.delete(p);
    }
    this.drop((item) => lost.has(item.batch.partition));
    // The ownership known now is a subset of the true one: sending what is still ours is safe.
    this.endRebalance();
    const started = Date.now();
    const deadline = started + (this.deps.handoverMs ?? DEFAULT_HANDOVER_MS);
    while ([...this.sending].some((i) => lost.has(i.batch.partition)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.recorder.flush();
    this.deps.logger.info({ lost: partitions, handoverMs: Date.now() - started }, 'delivery: partitions revoked; their sends in flight recorded');
    if (this.active.size < this.deps.config.maxPending) this.space?.();
  }

  /** Forgets queued and delayed items that match (not those in flight); they get no outcome here. */
  private drop(match: (item: Item) => boolean): void {
    for (const heap of [this.queue, this.delayed]) {
      const kept: Item[] = [];
      for (let item = heap.pop(); item; item = heap.pop()) {
        if (match(item)) this.active.delete(item.ref.deliveryId);
        else kept.push(item);
      }
      for (const item of kept) heap.push(item);
    }
  }

  /** Whether the item's partition is still this worker's; if not, the item leaves it without an outcome. */
  private ours(item: Item): boolean {
    if (this.owned.has(item.batch.partition)) return true;
    this.sending.delete(item);
    this.active.delete(item.ref.deliveryId);
    return false;
  }

  private async loadNotification(job: DeliveryJob, partition: number): Promise<Notification> {
    const [requested] = await this.deps.eventStore.readStream(streams.notification(job.tenantId, job.notificationId), { maxCount: 1 });
    if (!requested || requested.type !== 'NotificationRequested') throw new Error(`notification ${job.notificationId} not found`);
    const bloom = new BloomFilter(Math.max(65_536, Math.ceil(4_000_000 / this.deps.config.partitions)), 0.01);
    const dispatched = new Set<string>();
    let seenPosition = 0;
    // What this partition already has in the log (after a restart or a takeover): outcomes go
    // into the filter; intents without an outcome were in flight when their owner lost them.
    const stream = streams.deliveries(job.tenantId, job.notificationId, partition);
    let from = 0;
    const readOn = async (): Promise<void> => {
      for (;;) {
        const events = await this.deps.eventStore.readStream(stream, { fromRevision: from, maxCount: 200 });
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
      const until = Date.now() + (this.deps.handoverMs ?? DEFAULT_HANDOVER_MS);
      while (dispatched.size > 0 && Date.now() < until && !this.stopped) {
        await new Promise((r) => setTimeout(r, 100));
        await readOn();
      }
    }
    return { text: requested.data.text, bloom, inFlightAtCrash: dispatched, seenPosition };
  }

  private async accept(batch: readonly BusMessage[]): Promise<void> {
    for (const m of batch) {
      // Taken away while this batch waited for room: the new owner reads it again.
      if (!this.owned.has(m.partition)) return;
      const job = m.value as DeliveryJob;
      const message: Message = { partition: m.partition, offset: m.offset, remaining: job.deliveries.length };
      const list = this.messages.get(m.partition) ?? [];
      list.push(message);
      this.messages.set(m.partition, list);
      const notification = await this.notification(job, m.partition);
      const b: Batch = { tenantId: job.tenantId, notificationId: job.notificationId, partition: m.partition, requestedPosition: job.requestedPosition, requestedAt: job.requestedAt };
      const deadline = Date.parse(job.deadline);
      for (const ref of job.deliveries) {
        if (this.active.has(ref.deliveryId)) {
          message.remaining--;
          continue;
        }
        // Sent before a crash, outcome unknown: send again, flagged (its first send may have landed).
        const possiblyDuplicate = notification.inFlightAtCrash.delete(ref.deliveryId);
        if (!possiblyDuplicate && notification.bloom.mightContain(ref.deliveryId)) {
          await this.deps.readModelsCaughtUp(Math.max(this.recorder.lastPosition, notification.seenPosition));
          const entry = await this.deps.readStore.get<TimelineEntryDocument>(TIMELINE, deliveryEntryId(job.tenantId, ref.userId, job.requestedPosition, ref.deviceId));
          if (entry?.status && TERMINAL.has(entry.status)) {
            message.remaining--;
            continue;
          }
        }
        const item: Item = { ref, batch: b, deadline, seq: this.seq++, attempts: 0, notBefore: 0, possiblyDuplicate, lastReason: null, dispatched: false, message, notification };
        this.active.set(ref.deliveryId, item);
        this.queue.push(item);
      }
      this.commitDone(m.partition);
      this.wake?.();
      while (!this.stopped && this.active.size >= this.deps.config.maxPending) {
        await new Promise<void>((resolve) => (this.space = resolve));
        this.space = null;
      }
    }
    this.deps.metrics?.queueDepth.set(this.depth);
  }

  // ---- dispatch ----------------------------------------------------------------------------

  private async dispatchLoop(): Promise<void> {
    while (!this.stopped) {
      // Waiting is measured on the process clock; deadlines on the service clock (injectable).
      const tick = Date.now();
      const now = this.deps.clock.now().getTime();
      while (this.delayed.size > 0 && this.delayed.peek()!.notBefore <= tick) this.queue.push(this.delayed.pop()!);
      const room = Math.min(1000, this.deps.config.maxInFlight - this.sending.size);
      if (room <= 0 || this.queue.size === 0 || this.rebalance || this.rounds >= (this.deps.dispatchRounds ?? 1)) {
        const nextDelayed = this.delayed.peek()?.notBefore;
        const sleep = room <= 0 || this.rebalance || this.rounds >= (this.deps.dispatchRounds ?? 1) ? 50 : nextDelayed === undefined ? 200 : Math.max(1, nextDelayed - tick);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(sleep, 200));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
        continue;
      }
      // Take only what the providers can take now: the rest waits in the queue, in deadline order.
      const round: Item[] = [];
      const held: Item[] = [];
      const budget = new Map<string, number>();
      while (round.length < room && this.queue.size > 0) {
        const item = this.queue.pop()!;
        if (!this.ours(item)) continue;
        // Never sent after its deadline: what is still queued then expires.
        if (item.deadline <= now) {
          this.expire(item, item.lastReason ? `deadline passed; last error: ${item.lastReason}` : 'deadline passed before a provider could take it');
          continue;
        }
        const channel = item.ref.channel;
        const left = budget.get(channel) ?? this.deps.router.available(channel);
        if (left <= 0) {
          held.push(item);
          budget.set(channel, 0);
          if (held.length > 5000) break;
          continue;
        }
        budget.set(channel, left - 1);
        round.push(item);
      }
      for (const item of held) this.queue.push(item);
      if (round.length === 0) {
        await new Promise((r) => setTimeout(r, 5));
        continue;
      }
      for (const item of round) this.sending.add(item);
      // Rounds may overlap (dispatchRounds): each waits for its intent to be appended and the read
      // models to reach it before its sends begin.
      this.rounds++;
      const d: Promise<void> = this.dispatch(round)
        .catch((e: unknown) => {
          this.deps.logger.error({ err: e }, 'dispatch round failed');
          for (const item of round) {
            if (!this.sending.has(item)) continue;
            this.sending.delete(item);
            this.retry(item, `internal error: ${(e as Error).message}`, false);
          }
        })
        .finally(() => {
          this.rounds--;
          this.sends.delete(d);
          this.wake?.();
        });
      this.sends.add(d);
      // Let responses and timers run between rounds: a busy queue must not starve I/O.
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Who may still receive: checked at send time, not only at fan-out. */
  private async eligible(items: readonly Item[]): Promise<{ ok: { item: Item; message: OutboundMessage }[]; refused: { item: Item; reason: string }[] }> {
    const ids = [...new Set(items.map((i) => userDocId(i.batch.tenantId, i.ref.userId)))];
    const users = new Map((await this.deps.readStore.getMany<UserDocument>(USERS, ids)).map((u) => [u.id, u]));
    const now = this.deps.clock.now().toISOString();
    const ok: { item: Item; message: OutboundMessage }[] = [];
    const refused: { item: Item; reason: string }[] = [];
    for (const item of items) {
      const user = users.get(userDocId(item.batch.tenantId, item.ref.userId));
      const device = user?.devices.find((d) => d.deviceId === item.ref.deviceId);
      const reason = !user
        ? 'user erased or unknown'
        : !user.optIn
          ? 'opted out'
          : now < user.consent.start || now >= user.consent.end
            ? 'outside the consent period'
            : !device
              ? 'device removed'
              : device.invalid
                ? 'device invalid'
                : null;
      if (reason) {
        refused.push({ item, reason });
        continue;
      }
      const key = await this.deps.cipher.keyFor(userKeyId(item.batch.tenantId, item.ref.userId), { create: false });
      if (!key) {
        refused.push({ item, reason: 'user erased' });
        continue;
      }
      ok.push({ item, message: { deliveryId: item.ref.deliveryId, address: this.deps.cipher.open(key, device!.address), text: item.notification.text } });
    }
    return { ok, refused };
  }

  private async dispatch(round: Item[]): Promise<void> {
    // The intent is logged before any provider sees a message: a crash from here on marks these
    // deliveries possibly duplicated when they are sent again.
    for (const item of round) {
      if (item.dispatched) continue;
      item.dispatched = true;
      this.recorder.dispatched(item.batch, [item.ref]);
    }
    const intent = await this.recorder.flush();
    failpoint('delivery:after-dispatch-intent');
    // A rebalance that began meanwhile decides who sends: the intent alone makes a new owner wait
    // for this worker's outcome (or, past the handover time, send again flagged).
    while (this.rebalance) await this.rebalance.done;
    const mine = round.filter((item) => this.ours(item));
    if (mine.length === 0) return;
    // Checked after the intent: any opt-out or consent change logged before it is in the read
    // model now, so a change accepted before this send began is always honoured.
    await this.deps.readModelsCaughtUp(intent);
    const second = await this.eligible(mine);
    for (const r of second.refused) {
      this.sending.delete(r.item);
      this.fail(r.item, null, r.reason);
    }
    const byChannel = new Map<string, { item: Item; message: OutboundMessage }[]>();
    for (const o of second.ok) {
      const list = byChannel.get(o.item.ref.channel) ?? [];
      list.push(o);
      byChannel.set(o.item.ref.channel, list);
    }
    for (const [channel, list] of byChannel) {
      const send = this.send(channel as Item['ref']['channel'], list).finally(() => this.sends.delete(send));
      this.sends.add(send);
    }
  }

  private async send(channel: Item['ref']['channel'], list: { item: Item; message: OutboundMessage }[]): Promise<void> {
    const byId = new Map(list.map((o) => [o.item.ref.deliveryId, o.item]));
    const now = this.deps.clock.now().getTime();
    const live = list.filter((o) => {
      if (o.item.deadline > now) return true;
      this.sending.delete(o.item);
      this.expire(o.item, 'deadline passed before a provider could take it');
      return false;
    });
    let result;
    try {
      result = await this.deps.router.send(channel, live.map((o) => o.message));
    } catch (e) {
      result = { sent: [], unsent: live.map((o) => o.message), waitMs: 100 };
      this.deps.logger.error({ err: e, channel }, 'router failed');
    }
    const handled = new Set<string>();
    for (const routed of result.sent) {
      this.deps.metrics?.attemptSeconds.observe({ provider: routed.provider }, routed.latencyMs / 1000);
      for (const outcome of routed.outcomes) {
        const item = byId.get(outcome.deliveryId);
        if (!item || handled.has(outcome.deliveryId)) continue;
        handled.add(outcome.deliveryId);
        this.sending.delete(item);
        item.attempts++;
        this.recorder.attempted(item.batch, {
          ...item.ref,
          provider: routed.provider,
          latencyMs: Math.round(routed.latencyMs),
          outcome: outcome.outcome,
          ...(outcome.outcome === 'accepted' ? {} : { reason: outcome.reason }),
          ...(item.possiblyDuplicate ? { possiblyDuplicate: true } : {}),
        });
        if (outcome.outcome === 'accepted') this.succeed(item, routed.provider);
        else if (outcome.outcome === 'permanent') {
          if (outcome.invalidDevice) this.recorder.deviceInvalidated(item.batch, item.ref.userId, item.ref.deviceId, routed.provider, outcome.reason);
          this.fail(item, routed.provider, outcome.reason);
        } else {
          // From here on every attempt of it is flagged: the lost one may have arrived.
          if (outcome.maybeDelivered) item.possiblyDuplicate = true;
          this.retry(item, `${routed.provider}: ${outcome.reason}`, true, outcome.retryAfterMs);
        }
      }
    }
    for (const message of result.unsent) {
      const item = byId.get(message.deliveryId);
      if (!item || handled.has(message.deliveryId)) continue;
      handled.add(message.deliveryId);
      this.sending.delete(item);
      if (!this.ours(item)) continue;
      item.notBefore = Date.now() + result.waitMs;
      this.delayed.push(item);
    }
    // A provider that answered for fewer messages than it was given: the rest count as not sent.
    for (const o of live) {
      if (handled.has(o.item.ref.deliveryId)) continue;
      this.sending.delete(o.item);
      this.retry(o.item, 'no outcome from the provider', true);
    }
    this.wake?.();
  }

  // ---- outcomes ----------------------------------------------------------------------------

  private retry(item: Item, reason: string, counted: boolean, retryAfterMs?: number): void {
    item.lastReason = reason;
    // No longer ours: the new owner sends it (flagged, since an attempt of it is in the log).
    if (!this.ours(item)) return;
    const { retryBaseMs, retryMaxMs } = this.deps.config;
    const backoff = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.max(0, item.attempts - 1));
    // Full jitter: spread retries so a recovering provider is not hit by a wall of them.
    const wait = Math.max(retryAfterMs ?? 0, counted ? Math.random() * backoff : retryBaseMs);
    if (this.deps.clock.now().getTime() + wait >= item.deadline) {
      this.expire(item, `deadline passed after ${item.attempts} attempt(s); last error: ${reason}`);
      return;
    }
    item.notBefore = Date.now() + wait;
    this.delayed.push(item);
    this.wake?.();
  }

  private succeed(item: Item, provider: string): void {
    this.recorder.succeeded(item.batch, item.ref, provider, item.possiblyDuplicate);
  }

  private fail(item: Item, provider: string | null, reason: string): void {
    this.recorder.failed(item.batch, item.ref, provider, reason);
  }

  private expire(item: Item, reason: string): void {
    this.recorder.expired(item.batch, item.ref, reason);
  }

  /** After the outcomes are in the log: forget the deliveries, release their messages' offsets. */
  private settled(terminals: readonly Terminal[]): void {
    const partitions = new Set<number>();
    const now = this.deps.clock.now().getTime();
    for (const t of terminals) {
      const item = this.active.get(t.ref.deliveryId);
      if (!item) continue;
      this.active.delete(t.ref.deliveryId);
      item.notification.bloom.add(t.ref.deliveryId);
      item.message.remaining--;
      partitions.add(item.message.partition);
      this.deps.metrics?.deliveries.inc({ status: t.status, channel: t.ref.channel, provider: t.provider ?? 'none' });
      this.deps.metrics?.deadlineSlackSeconds.observe((item.deadline - now) / 1000);
    }
    for (const p of partitions) this.commitDone(p);
    this.deps.metrics?.queueDepth.set(this.depth);
    if (this.active.size < this.deps.config.maxPending) this.space?.();
  }

  private commitDone(partition: number): void {
    const list = this.messages.get(partition);
    if (!list || !this.consumer) return;
    let last: Message | null = null;
    while (list.length > 0 && list[0]!.remaining <= 0) last = list.shift()!;
    if (last && this.consumer) {
      void this.consumer.commit(partition, last.offset).catch((e) => this.deps.logger.warn({ err: e }, 'offset commit failed'));
    }
  }
}

export type { RecordedEvent, AnyEvent };
