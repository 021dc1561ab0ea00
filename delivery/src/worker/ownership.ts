import type { Logger } from '#platform/logger';
import type { Recorder } from '../recorder';
import type { Commits } from './commits';
import type { Scheduler } from './scheduler';
import type { Item, Pending } from './state';

/**
 * The bus partitions this worker owns, and the hand-over when a rebalance moves them: it sends
 * nothing of another's, not even what it has queued.
 */
export class Ownership {
  private readonly owned = new Set<number>();
  /** Set from the start of a rebalance to its end: nothing new goes to a provider meanwhile. */
  private rebalance: { done: Promise<void>; end: () => void } | null = null;

  constructor(
    private readonly deps: Readonly<{
      logger: Logger;
      handoverMs: number;
      pending: Pending;
      scheduler: Scheduler;
      commits: Commits;
      recorder: Recorder;
      /** Forgets the notification state loaded for these partitions. */
      reload: (partitions: readonly number[]) => void;
      /** Forgets the slices held for partitions taken away. */
      forget: (partitions: readonly number[]) => void;
      partitions: number;
      onShare?: (fraction: number) => void;
    }>,
  ) {}

  owns(partition: number): boolean {
    return this.owned.has(partition);
  }

  /** Whether the item's partition is still this worker's; if not, the item leaves it without an outcome. */
  ours(item: Item): boolean {
    if (this.owned.has(item.batch.partition)) return true;
    this.deps.pending.leave(item);
    return false;
  }

  get rebalancing(): boolean {
    return this.rebalance !== null;
  }

  /** Resolves once no rebalance is under way. */
  async settledRebalance(): Promise<void> {
    while (this.rebalance) await this.rebalance.done;
  }

  /** Partitions newly assigned may have been served by a worker that died: their state is reloaded. */
  assigned(partitions: readonly number[]): void {
    for (const p of partitions) this.owned.add(p);
    this.deps.onShare?.(this.owned.size / this.deps.partitions);
    this.deps.logger.info({ gained: partitions, owned: [...this.owned].sort((a, b) => a - b) }, 'delivery: partitions assigned');
    this.deps.reload(partitions);
    this.endRebalance();
  }

  began(): void {
    if (this.rebalance) return;
    this.deps.logger.info({ inFlight: this.deps.pending.sending.size, queued: this.deps.scheduler.depth }, 'delivery: rebalance began; holding new sends');
    let end!: () => void;
    const done = new Promise<void>((resolve) => (end = resolve));
    this.rebalance = { done, end };
  }

  private endRebalance(): void {
    const r = this.rebalance;
    this.rebalance = null;
    r?.end();
    this.deps.scheduler.wake();
  }

  /**
   * Partitions taken away: what is queued for them is dropped (their new owner reads it again
   * from the last commit), what is in flight finishes and its outcomes are appended, so the new
   * owner finds them in the log and sends none of them twice.
   */
  async revoked(partitions: readonly number[]): Promise<void> {
    const { pending, scheduler, commits, recorder, logger } = this.deps;
    const lost = new Set(partitions);
    for (const p of lost) {
      this.owned.delete(p);
      commits.forget(p);
    }
    this.deps.onShare?.(this.owned.size / this.deps.partitions);
    scheduler.drop(lost);
    this.deps.forget(partitions);
    // The ownership known now is a subset of the true one: sending what is still ours is safe.
    this.endRebalance();
    const started = Date.now();
    const deadline = started + this.deps.handoverMs;
    while ([...pending.sending].some((i) => lost.has(i.batch.partition)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await recorder.flush();
    logger.info({ lost: partitions, handoverMs: Date.now() - started }, 'delivery: partitions revoked; their sends in flight recorded');
    pending.released();
  }
}
