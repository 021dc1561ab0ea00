import { DeadlineExceeded } from './deadline';

/** The reason a stalled integration's calls are cancelled with; adapters quote its message. */
export class Stalled extends DeadlineExceeded {
  override readonly name = 'Stalled';
  constructor(readonly silentMs: number) {
    super(silentMs, `no answer from the provider for ${Math.round(silentMs)} ms`);
  }
}

/** When an integration counts as stalled; null while its typical latency is unknown (never then). */
export type StallLimits = Readonly<{
  /** Silence, in ms: calls outstanding, not one answer. */
  silentMs: number;
  /**
   * Messages that must have waited at least as long: a hang silences them all, one slow request is
   * its deadline's. Messages, not requests: a batch call (SendGrid's, up to 1,000 recipients in one
   * request) is one request, and a hung batch provider has only a few out.
   */
  messages: number;
}>;

export type StallOptions = Readonly<{
  /** How often the monitor looks. */
  intervalMs: number;
  /** The most silence one check adds, however long since the last: our blocked loop is not the provider's silence. */
  maxStepMs: number;
  /** A tick later than this was held up by our own loop: it gives no verdict. */
  maxLateMs: number;
}>;

/**
 * Ticks run 100-200 ms late on 2 busy cores while a failover opens hundreds of connections:
 * they still judge (a verdict starved there left the failover to the deadline), and each adds
 * at most 150 ms of silence.
 */
const DEFAULTS: StallOptions = { intervalMs: 50, maxStepMs: 150, maxLateMs: 250 };

type Outstanding = { readonly at: number; readonly messages: number };

/**
 * One integration's calls in flight and its silence: the time, counted while it has calls
 * outstanding, since it last answered anything (a call, or one request of a batch call). It has
 * stalled once the silence reaches its limit and enough messages have waited that long: then
 * every outstanding call is cancelled and its breaker opens (`onStall`, the registry's), without
 * waiting for each call's deadline, which follows the noisy tail latency (p99).
 */
export class StallWatch {
  private readonly calls = new Map<AbortController, Outstanding>();
  /** When it last answered, or last became busy: silence is counted from there. */
  private since = 0;
  /** Silence counted so far, in ms of our own responsive time (StallMonitor.check). */
  private silent = 0;

  constructor(
    private readonly busy: Set<StallWatch>,
    readonly limits: () => StallLimits | null,
    readonly onStall: (silentMs: number) => void,
    private readonly now: () => number,
  ) {}

  get outstanding(): number {
    return this.calls.size;
  }

  /** A call of `messages` messages goes out; `call` aborts it. */
  begin(call: AbortController, messages = 1): void {
    if (this.calls.size === 0) {
      this.heard();
      this.busy.add(this);
    }
    this.calls.set(call, { at: this.now(), messages });
  }

  /** The call settled (answered or given up). */
  end(call: AbortController): void {
    this.calls.delete(call);
  }

  /** The provider answered something, success or error: it is not silent. */
  heard(): void {
    this.since = this.now();
    this.silent = 0;
  }

  /**
   * The silence up to `now`, adding the time since `from` (the previous check, or less after a
   * blocked loop) or since it last answered, whichever is later.
   */
  observe(from: number, now: number): number {
    if (this.calls.size === 0) {
      this.silent = 0;
      this.busy.delete(this);
      return 0;
    }
    this.silent += Math.max(0, now - Math.max(from, this.since));
    return this.silent;
  }

  /** Silent for at least `limits.silentMs`, with at least `limits.messages` messages out that long. */
  stalled(now: number, limits: StallLimits): boolean {
    if (this.silent < limits.silentMs) return false;
    let waited = 0;
    for (const c of this.calls.values()) if (now - c.at >= limits.silentMs) waited += c.messages;
    return waited >= limits.messages;
  }

  /** Cancels every outstanding call: none is watched any more. Answers how many. */
  abort(reason: Stalled): number {
    const calls = [...this.calls.keys()];
    this.calls.clear();
    this.silent = 0;
    this.busy.delete(this);
    for (const c of calls) c.abort(reason);
    return calls.length;
  }
}

/**
 * Looks at every busy integration's silence on a timer. Three rules keep our own stalls from
 * passing for the provider's: the check runs in a setImmediate after the timer tick, that is
 * after the loop's I/O phase, so answers already in the sockets are read first; a check adds at
 * most one step of silence, however long the loop was blocked (garbage collection, a long
 * synchronous task); and a tick that fired very late gives no verdict, leaving a loop iteration
 * for answers that complete in several hops (a body inflated on the thread pool).
 */
export class StallMonitor {
  private readonly busy = new Set<StallWatch>();
  private last: number | null = null;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly options: StallOptions = DEFAULTS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A watch for one integration. */
  watch(limits: () => StallLimits | null, onStall: (silentMs: number) => void): StallWatch {
    return new StallWatch(this.busy, limits, onStall, this.now);
  }

  /** One check at `now`, after an I/O phase; `onTime`: the tick that scheduled it was not late. */
  check(now: number, onTime: boolean): void {
    const from = this.last === null ? now : Math.max(this.last, now - this.options.maxStepMs);
    this.last = now;
    for (const w of [...this.busy]) {
      const silent = w.observe(from, now);
      if (!onTime || silent === 0) continue;
      const limits = w.limits();
      if (limits !== null && w.stalled(now, limits)) w.onStall(silent);
    }
  }

  start(): void {
    if (this.timer) return;
    const { intervalMs, maxLateMs } = this.options;
    let due = this.now() + intervalMs;
    this.timer = setInterval(() => {
      const at = this.now();
      const onTime = at - due <= maxLateMs;
      due = at + intervalMs;
      setImmediate(() => this.check(this.now(), onTime));
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
