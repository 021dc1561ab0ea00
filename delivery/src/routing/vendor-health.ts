/**
 * The health of one vendor endpoint (APNs production, an FCM host, a sandbox instance...), fed by
 * every integration's calls to it. It opens when the vendor fails for several integrations at
 * once (a provider-wide outage: 5xx, timeouts, connection errors), so that every tenant's
 * integration of that vendor is skipped, even one that has sent nothing yet. One integration
 * failing alone (its own project, its own account) only opens that integration's breaker, and
 * refused credentials are never counted here.
 */
export class VendorHealth {
  /** The window's calls, oldest first from `head`; counted as they come and go (a call per delivery). */
  private calls: { at: number; integration: string; ok: boolean }[] = [];
  private head = 0;
  /** Failures in the window per integration. */
  private failing = new Map<string, number>();
  private openedAt: number | null = null;
  private probing = false;

  constructor(
    readonly name: string,
    private readonly options: Readonly<{ windowMs: number; minFailures: number; minIntegrations: number; errorRate: number; resetMs: number }> = {
      windowMs: 10_000,
      minFailures: 6,
      minIntegrations: 2,
      errorRate: 0.5,
      resetMs: 2_000,
    },
    private readonly onChange: (state: 'open' | 'half-open' | 'closed') => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** Open and not yet due for a probe: skip this vendor. */
  get opened(): boolean {
    return this.openedAt !== null && (this.probing || this.now() - this.openedAt < this.options.resetMs);
  }

  /** Open, and due for a probe: one message may go. */
  get halfOpen(): boolean {
    return this.openedAt !== null && !this.opened;
  }

  /** A probe is about to go out (while half-open): no other call until its verdict. */
  probe(): void {
    if (this.halfOpen) this.probing = true;
  }

  record(integration: string, ok: boolean): void {
    const now = this.now();
    if (this.openedAt !== null) {
      if (!this.probing) return;
      this.probing = false;
      if (ok) {
        this.openedAt = null;
        this.forget();
        this.onChange('closed');
      } else {
        this.openedAt = now;
        this.onChange('open');
      }
      return;
    }
    this.calls.push({ at: now, integration, ok });
    if (!ok) this.failing.set(integration, (this.failing.get(integration) ?? 0) + 1);
    const since = now - this.options.windowMs;
    while (this.calls[this.head]!.at < since) {
      const old = this.calls[this.head++]!;
      if (old.ok) continue;
      const n = this.failing.get(old.integration)! - 1;
      if (n === 0) this.failing.delete(old.integration);
      else this.failing.set(old.integration, n);
    }
    // The array is compacted once half of it has left the window.
    if (this.head > 1024 && this.head * 2 > this.calls.length) {
      this.calls = this.calls.slice(this.head);
      this.head = 0;
    }
    if (this.failing.size < this.options.minIntegrations) return;
    let failures = 0;
    for (const n of this.failing.values()) failures += n;
    if (failures >= this.options.minFailures && failures / (this.calls.length - this.head) >= this.options.errorRate) {
      this.openedAt = now;
      this.onChange('open');
    }
  }

  private forget(): void {
    this.calls = [];
    this.head = 0;
    this.failing.clear();
  }
}
