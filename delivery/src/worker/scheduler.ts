import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import type { DeliveryConfig } from '../config';
import { MinHeap } from '../heap';
import { newRound, type ProviderRouter } from '../routing/router';
import type { Item, Pending, Slice, Tasks } from './state';

/** What the deadline queue holds: deliveries to send, and slices with pages still to plan. */
export type Entry = Item | Slice;
const isSlice = (e: Entry): e is Slice => 'job' in e;

/** Why a delivery failed when no integration serves its tenant's channel. */
export const NO_PROVIDER = 'no-provider';

/** What a dispatch round hands on: the scheduler decides what goes when, these decide the rest. */
export type Rounds = Readonly<{
  /** Set while a rebalance runs: nothing new goes to a provider meanwhile. */
  holding: () => boolean;
  ours: (item: Item) => boolean;
  dispatch: (round: Item[]) => Promise<void>;
  retry: (item: Item, reason: string, counted: boolean) => void;
  expire: (item: Item, reason: string) => void;
  /** Ends a delivery that cannot be sent at all (no integration serves its tenant and channel). */
  fail: (item: Item, reason: string) => void;
  /** Plans a slice's next page (it comes back to the queue while pages remain). */
  plan: (slice: Slice) => Promise<void>;
}>;

/**
 * Earliest deadline first across tenants: a queue by deadline, a heap of items waiting out a
 * backoff, and rounds that take only what the providers can take now.
 */
export class Scheduler {
  private readonly queue = new MinHeap<Entry>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.seq < b.seq));
  private readonly delayed = new MinHeap<Item>((a, b) => a.notBefore < b.notBefore);
  /** Dispatch rounds between taking their items and handing them to providers. */
  private rounds = 0;
  /** Queue room promised to pages being planned. */
  private reserved = 0;
  private stopped = false;
  /** The event loop's busy time when the window was last adjusted, and when that was last asked. */
  private elu: EventLoopUtilization = performance.eventLoopUtilization();
  private measuredAt = Date.now();
  private wakeUp: (() => void) | null = null;

  constructor(
    private readonly deps: Readonly<{
      config: DeliveryConfig;
      router: ProviderRouter;
      clock: Clock;
      logger: Logger;
      pending: Pending;
      tasks: Tasks;
      dispatchRounds?: number;
    }>,
  ) {}

  get depth(): number {
    return this.queue.size + this.delayed.size;
  }

  enqueue(entry: Entry): void {
    this.queue.push(entry);
  }

  /** Back in the queue once `notBefore` (process clock) has passed. */
  delay(entry: Item | Slice, notBefore: number): void {
    if (isSlice(entry)) {
      setTimeout(() => {
        this.queue.push(entry);
        this.wake();
      }, Math.max(0, notBefore - Date.now())).unref();
      return;
    }
    entry.notBefore = notBefore;
    this.delayed.push(entry);
  }

  wake(): void {
    this.wakeUp?.();
  }

  stop(): void {
    this.stopped = true;
    this.wake();
  }

  /** Forgets queued and delayed items and slices of a partition (not what is in flight); they get no outcome here. */
  drop(partitions: ReadonlySet<number>): void {
    for (const heap of [this.queue, this.delayed] as MinHeap<Entry>[]) {
      const kept: Entry[] = [];
      for (let entry = heap.pop(); entry; entry = heap.pop()) {
        const partition = isSlice(entry) ? entry.partition : entry.batch.partition;
        if (!partitions.has(partition)) kept.push(entry);
        else if (!isSlice(entry)) this.deps.pending.active.delete(entry.ref.deliveryId);
      }
      for (const entry of kept) heap.push(entry);
    }
  }

  async run(r: Rounds): Promise<void> {
    const { pending } = this.deps;
    const maxRounds = this.deps.dispatchRounds ?? 1;
    while (!this.stopped) {
      // Waiting is measured on the process clock; deadlines on the service clock (injectable).
      const tick = Date.now();
      const now = this.deps.clock.now().getTime();
      while (this.delayed.size > 0 && this.delayed.peek()!.notBefore <= tick) this.queue.push(this.delayed.pop()!);
      const window = pending.sending;
      if (tick - this.measuredAt >= 100) {
        this.measuredAt = tick;
        const elu = performance.eventLoopUtilization();
        if (window.adjust(tick, performance.eventLoopUtilization(elu, this.elu).utilization)) this.elu = elu;
      }
      const head = this.queue.peek();
      // Work due before something in flight goes in at once: past the window's size (up to the
      // in-flight limit), in a round of its own if every round is taken.
      const overtakes = head !== undefined && window.overtakes(head.rank);
      const room = head === undefined ? 0 : Math.min(1000, window.room(head.rank));
      // A round is worth its intent's append: while deliveries are in flight, one waits until a
      // quarter of the window is free (or the queue holds less), unless it overtakes them.
      const worth = overtakes || window.size === 0 ? 1 : Math.min(Math.max(1, Math.floor(window.target / 4)), this.queue.size);
      const busy = head !== undefined && (room < worth || r.holding() || this.rounds >= maxRounds + (overtakes ? 1 : 0));
      if (head === undefined || busy) {
        if (head !== undefined && !r.holding()) {
          if (room < worth) window.filled();
          // A slice first in deadline order is planned whatever the window: its page joins the queue.
          this.planFirst(r);
        }
        const nextDelayed = this.delayed.peek()?.notBefore;
        const sleep = busy ? 50 : nextDelayed === undefined ? 200 : Math.max(1, nextDelayed - tick);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(sleep, 200));
          this.wakeUp = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeUp = null;
        continue;
      }
      const round = this.take(room, now, r);
      if (round.length === 0) {
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      for (const item of round) pending.sending.add(item);
      // Rounds may overlap (dispatchRounds): each waits for its intent to be appended before its
      // sends begin (the read models were caught up once, per slice).
      this.rounds++;
      this.deps.tasks.track(
        r
          .dispatch(round)
          .catch((e: unknown) => {
            this.deps.logger.error({ err: e }, 'dispatch round failed');
            for (const item of round) {
              if (!pending.sending.has(item)) continue;
              pending.sending.delete(item);
              r.retry(item, `internal error: ${(e as Error).message}`, false);
            }
          })
          .finally(() => {
            this.rounds--;
            this.wake();
          }),
      );
      // Let responses and timers run between rounds: a busy queue must not starve I/O.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Takes only what the providers can take now: the rest waits in the queue, in deadline order.
   * A slice reached in that order has its next page planned if the queue has room for it.
   */
  private take(room: number, now: number, r: Rounds): Item[] {
    const round: Item[] = [];
    const held: Entry[] = [];
    const claims = newRound();
    const window = this.deps.pending.sending;
    // What may go past the window's size is only what is due before something in it.
    const within = Math.min(room, window.target - window.size);
    while (round.length < room && this.queue.size > 0) {
      const entry = this.queue.pop()!;
      if (isSlice(entry)) {
        if (this.mayPlan(entry)) this.deps.tasks.track(this.planned(r, entry));
        else held.push(entry);
        continue;
      }
      const item = entry;
      if (!r.ours(item)) continue;
      if (round.length >= within && !window.overtakes(item.rank)) {
        // In deadline order: nothing after it overtakes either.
        held.push(item);
        window.filled();
        break;
      }
      // Never sent after its deadline: what is still queued then expires.
      if (item.deadline <= now) {
        r.expire(item, item.lastReason ? `deadline passed; last error: ${item.lastReason}` : 'deadline passed before a provider could take it');
        continue;
      }
      // Each tenant has its own chain of integrations; tenants sharing one share its room.
      const claimed = this.deps.router.claim(item.batch.tenantId, item.ref.channel, claims);
      if (claimed === null) {
        r.fail(item, NO_PROVIDER);
        continue;
      }
      if (!claimed) {
        held.push(item);
        if (held.length > 5000) break;
        continue;
      }
      round.push(item);
    }
    for (const entry of held) this.queue.push(entry);
    return round;
  }

  /** Plans the slices first in deadline order while no round can be taken: planning needs no room in the window. */
  private planFirst(r: Rounds): void {
    const held: Slice[] = [];
    for (let head = this.queue.peek(); head && isSlice(head); head = this.queue.peek()) {
      const slice = this.queue.pop() as Slice;
      if (this.mayPlan(slice)) this.deps.tasks.track(this.planned(r, slice));
      else held.push(slice);
    }
    for (const slice of held) this.queue.push(slice);
  }

  /**
   * Whether a page of the slice fits: within the queue's limit, counting pages being planned; or,
   * for a slice due before deliveries already queued (it was reached first in deadline order), a
   * quarter above it, so a tighter deadline never waits for a looser send's queue to drain.
   */
  private mayPlan(slice: Slice): boolean {
    const { pending, config } = this.deps;
    const held = pending.active.size + this.reserved;
    if (held + config.pageSize <= config.maxPending) return true;
    const preempts = this.queue.size > 0 && this.queue.peek()!.rank > slice.rank;
    return preempts && held + config.pageSize <= config.maxPending * 1.25;
  }

  private async planned(r: Rounds, slice: Slice): Promise<void> {
    this.reserved += this.deps.config.pageSize;
    try {
      await r.plan(slice);
    } catch (e) {
      this.deps.logger.warn({ err: e, notificationId: slice.job.notificationId, partition: slice.partition }, 'planning a page failed; trying again');
      this.delay(slice, Date.now() + 500);
    } finally {
      this.reserved -= this.deps.config.pageSize;
    }
  }
}
