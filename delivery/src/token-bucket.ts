/** Refills `ratePerSecond` tokens a second up to `burst`; takes what is there, never blocks. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private rate: number;
  private cap: number;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number = Math.max(1, ratePerSecond),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.rate = ratePerSecond;
    this.cap = burst;
    this.tokens = this.cap;
    this.last = this.now();
  }

  /**
   * This process's share of a quota the cluster shares (its partitions over all): rate and burst
   * scale with it, so the workers together never exceed the quota.
   */
  share(fraction: number): void {
    this.refill();
    const f = Math.max(0, Math.min(1, fraction));
    this.rate = this.ratePerSecond * f;
    this.cap = Math.max(f > 0 ? 1 : 0, this.burst * f);
    this.tokens = Math.min(this.tokens, this.cap);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.cap, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Takes up to `n` whole tokens and returns how many it took. */
  take(n: number): number {
    this.refill();
    const taken = Math.min(n, Math.floor(this.tokens));
    this.tokens -= taken;
    return taken;
  }

  /** Whole tokens there now, without taking them. */
  available(): number {
    this.refill();
    return Math.floor(this.tokens);
  }

  /** Milliseconds until at least one token is there. */
  waitMs(): number {
    this.refill();
    if (this.tokens >= 1) return 0;
    return this.rate > 0 ? Math.ceil(((1 - this.tokens) / this.rate) * 1000) : 1_000;
  }
}
