/** What the window holds: anything with a place in the deadline order (the worker's deliveries: see rankOf). */
type Timed = Readonly<{ rank: number }>;

export type WindowOptions = Readonly<{
  /** Never more in the window than this (DELIVERY_MAX_IN_FLIGHT: what a crash may leave in doubt). */
  max: number;
  /** How long a delivery should take from its dispatch round to its outcome; 0: the window is `max`. */
  targetMs: number;
  /** Where the window starts, and the smallest it gets however slow deliveries are (a provider that hangs holds its calls until their deadline). */
  min: number;
  /** How often the size follows the rate (ms). */
  adjustMs?: number;
}>;

const ADJUST_MS = 500;
/**
 * Below this share of its time busy, the process is not what deliveries wait for (a store's
 * lock, a provider's latency is): a smaller window would cut the rate, not the wait.
 */
const BUSY = 0.85;
/** Weight of the newest rate sample: smooths the bursts in which a provider call's outcomes come back. */
const ALPHA = 0.3;

/**
 * The deliveries between their dispatch round and their outcome. Earliest deadline first orders
 * what waits for the window, not what is in it: a delivery that enters waits behind everything
 * already there (intents being appended, eligibility reads, provider calls, their answers queued
 * for the process's CPU). So the window is sized by time, not count: the rate at which deliveries
 * leave it times a target latency, following the rate as it changes, never above `max`. Where the
 * process is the bottleneck, a delivery then spends about the target in the window whatever the
 * rate; where it is not, the window grows until it is (or reaches `max`).
 *
 * A delivery due before something already in the window may use the room up to `max`: a tighter
 * deadline goes in at once instead of waiting for a looser send's work to drain, and what is
 * already on its way is never taken back.
 */
export class SendWindow<T extends Timed> implements Iterable<T> {
  private readonly items = new Set<T>();
  /** How many in the window have each rank (a deadline, or a best-effort send's): its latest is what a tighter delivery overtakes. */
  private readonly ranks = new Map<number, number>();
  private limit: number;
  private rate: number | null = null;
  private left = 0;
  private saturated = false;
  private since: number;

  constructor(
    private readonly o: WindowOptions,
    now = Date.now(),
  ) {
    // From the smallest: a send's first seconds must not fill the window with more than the rate allows.
    this.limit = o.targetMs > 0 ? Math.min(o.min, o.max) : o.max;
    this.since = now;
  }

  get size(): number {
    return this.items.size;
  }

  /** The window's size now (at most `max`): what deliveries not due before anything in it may fill. */
  get target(): number {
    return this.limit;
  }

  has(item: T): boolean {
    return this.items.has(item);
  }

  add(item: T): void {
    if (this.items.has(item)) return;
    this.items.add(item);
    this.ranks.set(item.rank, (this.ranks.get(item.rank) ?? 0) + 1);
  }

  delete(item: T): boolean {
    if (!this.items.delete(item)) return false;
    const n = this.ranks.get(item.rank)! - 1;
    if (n === 0) this.ranks.delete(item.rank);
    else this.ranks.set(item.rank, n);
    this.left++;
    return true;
  }

  [Symbol.iterator](): Iterator<T> {
    return this.items[Symbol.iterator]();
  }

  /** Whether a delivery of this rank goes before something in the window (and may use the room up to `max`). */
  overtakes(rank: number): boolean {
    // Ranks in the window are few (one per send under way): a scan is cheaper than a heap.
    for (const r of this.ranks.keys()) if (rank < r) return true;
    return false;
  }

  /** Room for deliveries of this rank. */
  room(rank: number): number {
    return (this.overtakes(rank) ? this.o.max : Math.min(this.o.max, this.limit)) - this.items.size;
  }

  /** Work waited because the window was full: its size is binding, so the rate says what it should be. */
  filled(): void {
    this.saturated = true;
  }

  /**
   * Follows the rate at which deliveries leave the window, every `adjustMs` (true when it did).
   * `busy`: the share of that time the process's event loop was busy (1: unknown, taken as busy).
   */
  adjust(now = Date.now(), busy = 1): boolean {
    const { max, min, targetMs } = this.o;
    const elapsed = now - this.since;
    if (targetMs <= 0 || elapsed < (this.o.adjustMs ?? ADJUST_MS)) return false;
    const sample = (this.left * 1000) / elapsed;
    this.rate = this.rate === null ? sample : ALPHA * sample + (1 - ALPHA) * this.rate;
    const wanted = (this.rate * targetMs) / 1000;
    // At most halved or doubled per step. A window that was not full (the rate then says how much
    // work came, not how much could be done) only grows; so does a full one while the process is
    // not busy: what deliveries wait for then is elsewhere, and more of them in flight do not wait longer.
    const next = !this.saturated ? Math.min(this.limit * 2, Math.max(this.limit, wanted))
      : busy < BUSY ? this.limit * 2
        : Math.min(this.limit * 2, Math.max(this.limit / 2, wanted));
    this.limit = Math.round(Math.min(max, Math.max(Math.min(min, max), next)));
    this.left = 0;
    this.saturated = false;
    this.since = now;
    return true;
  }
}
