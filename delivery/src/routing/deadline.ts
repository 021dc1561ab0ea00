import type { ProviderPolicy } from '../config';
import type { SendOutcome } from '../providers/port';

/** The reason a call's signal carries when its deadline passes; adapters quote its message. */
export class DeadlineExceeded extends Error {
  override readonly name: string = 'DeadlineExceeded';
  constructor(
    readonly timeoutMs: number,
    message = `deadline of ${timeoutMs} ms passed`,
  ) {
    super(message);
  }
}

/**
 * A call given up (at its deadline, or its integration stalled), as the breaker counts it: a
 * failure (code ETIMEDOUT), carrying the adapter's outcome per message (accepted ones stay
 * accepted) when it answered the cancellation in time, none when it did not.
 */
export class GivenUp extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(
    readonly timeoutMs: number,
    readonly outcomes: readonly SendOutcome[] | null,
    message = `deadline of ${timeoutMs} ms passed`,
  ) {
    super(message);
  }

  /** Given up by `signal`, in its reason's words. */
  static by(signal: AbortSignal, outcomes: readonly SendOutcome[] | null): GivenUp {
    const reason: unknown = signal.reason;
    return reason instanceof DeadlineExceeded ? new GivenUp(reason.timeoutMs, outcomes, reason.message) : new GivenUp(0, outcomes);
  }
}

export type DeadlineOptions = Readonly<{
  /** Successful calls kept (a ring). */
  size: number;
  /** Older samples no longer count: a slowdown that lasts this long becomes the new normal. */
  maxAgeMs: number;
  /** Below this many recent samples the deadline is the policy's full timeout. */
  minSamples: number;
  /** The integration's first calls are not samples: they set up its connections (TLS, a token). */
  skipFirst: number;
}>;

const DEFAULTS: DeadlineOptions = { size: 256, maxAgeMs: 60_000, minSamples: 5, skipFirst: 5 };

/**
 * The deadline of an integration's next call, from the latency of its recent successful calls:
 * max(minTimeoutMs, timeoutLatencyFactor × p99), at most timeoutMs. A provider that hangs or
 * slows far past its usual latency is given up on after a few times its p99 instead of the fixed
 * timeout, so its breaker opens within a second or two. With too few recent samples (a new
 * integration, after a long outage) the full timeout applies, and the very first calls are not
 * counted: connections being set up are slow.
 * A half-open probe gets the same deadline: a provider still slow stays open, and once samples
 * have aged out the full timeout lets it back in at its new speed.
 */
export class CallDeadlines {
  private readonly ms: Float64Array;
  private readonly at: Float64Array;
  private count = 0;
  private next = 0;
  /** Samples ever recorded: tells the cached percentiles how stale they are. */
  private recorded = 0;
  private skipped = 0;
  private cached: { latency: Latency | null; at: number; recorded: number } | null = null;

  constructor(
    private readonly policy: Pick<ProviderPolicy, 'timeoutMs' | 'minTimeoutMs' | 'timeoutLatencyFactor' | 'minStallMs' | 'stallLatencyFactor'>,
    private readonly options: DeadlineOptions = DEFAULTS,
    private readonly now: () => number = Date.now,
  ) {
    this.ms = new Float64Array(options.size);
    this.at = new Float64Array(options.size);
  }

  /** A call that answered within its deadline took this long. */
  record(latencyMs: number): void {
    if (this.skipped < this.options.skipFirst) {
      this.skipped++;
      return;
    }
    this.ms[this.next] = latencyMs;
    this.at[this.next] = this.now();
    this.next = (this.next + 1) % this.options.size;
    this.count = Math.min(this.count + 1, this.options.size);
    this.recorded++;
  }

  /** The 99th percentile of recent successful calls, or null with too few of them. */
  p99(): number | null {
    return this.latency()?.p99 ?? null;
  }

  /** The median of recent successful calls, or null with too few of them. */
  p50(): number | null {
    return this.latency()?.p50 ?? null;
  }

  private latency(): Latency | null {
    const now = this.now();
    // Recomputed at most every 16 samples or 250 ms: a sort of 256 numbers per call adds up.
    const c = this.cached;
    if (c && now - c.at < 250 && (c.latency === null ? this.recorded === c.recorded : this.recorded - c.recorded < 16)) return c.latency;
    const since = now - this.options.maxAgeMs;
    const recent: number[] = [];
    for (let i = 0; i < this.count; i++) if (this.at[i]! >= since) recent.push(this.ms[i]!);
    let latency: Latency | null = null;
    if (recent.length >= this.options.minSamples) {
      recent.sort((a, b) => a - b);
      const at = (q: number) => recent[Math.min(recent.length - 1, Math.ceil(recent.length * q) - 1)]!;
      latency = { p50: at(0.5), p99: at(0.99) };
    }
    this.cached = { latency, at: now, recorded: this.recorded };
    return latency;
  }

  /** The next call's deadline, in ms. */
  timeoutMs(): number {
    const { timeoutMs, minTimeoutMs, timeoutLatencyFactor } = this.policy;
    const p99 = this.p99();
    if (p99 === null) return timeoutMs;
    return Math.min(timeoutMs, Math.max(minTimeoutMs, Math.ceil(timeoutLatencyFactor * p99)));
  }

  /**
   * How long the integration may stay silent (calls outstanding, not one answer) before it counts
   * as stalled: max(minStallMs, stallLatencyFactor × p50). The median, not the tail: it hardly
   * moves when a loaded machine stretches a few calls. Null while the typical latency is unknown
   * (a new integration setting up its connections): only the deadline applies then.
   */
  stallMs(): number | null {
    const p50 = this.p50();
    if (p50 === null) return null;
    return Math.max(this.policy.minStallMs, Math.ceil(this.policy.stallLatencyFactor * p50));
  }
}

type Latency = Readonly<{ p50: number; p99: number }>;

/**
 * `sending`'s outcome, or, once `signal` has aborted and the adapter has not answered within
 * `graceMs`, a rejection with null outcomes: adapters settle at once on a cancellation, and a
 * call never waits on one that does not.
 */
export const settleWithin = <T>(sending: Promise<T>, signal: AbortSignal, graceMs: number): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      timer = setTimeout(() => reject(GivenUp.by(signal, null)), graceMs);
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    sending.then(
      (v) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });

/**
 * An integration's completed calls over its breaker's window, counted when they complete. opossum
 * counts a call in the bucket it was fired in and its failure in the bucket it failed in, so a
 * call that fails at a deadline longer than the window never adds up to an error rate: a hang
 * would not open the breaker. This window does, by completion: `failing()` once at least
 * `volumeThreshold` calls failed in it, carrying more than `errorThresholdPercentage` of its
 * messages (a failed sendEach of 100 weighs more than a successful call of one).
 */
export class CompletionWindow {
  private readonly ok = new Float64Array(10);
  private readonly failed = new Float64Array(10);
  private readonly failedCalls = new Float64Array(10);
  private readonly stamp = new Float64Array(10).fill(-1);
  private readonly bucketMs: number;

  constructor(
    private readonly policy: Pick<ProviderPolicy, 'windowMs' | 'volumeThreshold' | 'errorThresholdPercentage'>,
    private readonly now: () => number = Date.now,
  ) {
    this.bucketMs = Math.max(1, policy.windowMs / 10);
  }

  /** A call of `messages` completed, successfully or not. */
  record(success: boolean, messages = 1): void {
    const b = Math.floor(this.now() / this.bucketMs);
    const i = b % 10;
    if (this.stamp[i] !== b) {
      this.stamp[i] = b;
      this.ok[i] = 0;
      this.failed[i] = 0;
      this.failedCalls[i] = 0;
    }
    if (success) this.ok[i]! += messages;
    else {
      this.failed[i]! += messages;
      this.failedCalls[i]!++;
    }
  }

  failing(): boolean {
    const b = Math.floor(this.now() / this.bucketMs);
    let ok = 0;
    let failed = 0;
    let calls = 0;
    for (let i = 0; i < 10; i++) {
      if (this.stamp[i]! <= b - 10) continue;
      ok += this.ok[i]!;
      failed += this.failed[i]!;
      calls += this.failedCalls[i]!;
    }
    return calls >= this.policy.volumeThreshold && (failed * 100) / (ok + failed) > this.policy.errorThresholdPercentage;
  }
}
