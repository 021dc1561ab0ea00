import type { DeliveryRef, DeviceKind, EventMetadata } from '#schema/events';
import { streams } from '#schema/streams';
import type { EventStore, NewEvent, StreamAppend } from '#platform/event-store/port';

export type Batch = Readonly<{ tenantId: string; notificationId: string; partition: number; requestedPosition: number; requestedAt: string }>;

type Attempt = DeliveryRef & {
  provider: string;
  latencyMs: number;
  outcome: 'accepted' | 'permanent' | 'transient';
  reason?: string;
  possiblyDuplicate?: boolean;
  /** Attempts of the delivery so far that may have reached a provider, this one included. */
  possibleCopies?: number;
};
type Buffered = {
  batch: Batch;
  dispatched: DeliveryRef[];
  attempted: Attempt[];
  succeeded: (DeliveryRef & { provider: string; possiblyDuplicate?: boolean; possibleCopies?: number })[];
  failed: (DeliveryRef & { provider: string | null; reason: string })[];
  expired: (DeliveryRef & { reason: string })[];
};

export type Terminal = Readonly<{ batch: Batch; ref: DeliveryRef; status: 'succeeded' | 'failed' | 'expired'; provider: string | null }>;

/**
 * Collects delivery steps and appends them in batches: per (notification, partition) stream one
 * event per kind, all streams in one append. Flushes never overlap, so a delivery's steps reach
 * the log in the order they happened (dispatched before attempted before its outcome).
 */
export class Recorder {
  private buffers = new Map<string, Buffered>();
  private invalidated: { tenantId: string; userId: string; deviceId: string; provider: string; reason: string; requestedPosition: number }[] = [];
  private terminals: Terminal[] = [];
  private size = 0;
  private flushing: Promise<number> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Position of the last event this recorder appended. */
  lastPosition = 0;

  constructor(
    private readonly deps: Readonly<{
      eventStore: EventStore;
      flushMs: number;
      maxBuffered?: number;
      now: () => Date;
      onFlushed: (terminals: readonly Terminal[], lastPosition: number) => void;
      onError: (e: unknown) => void;
    }>,
  ) {}

  private buffer(batch: Batch): Buffered {
    const key = `${batch.tenantId}\u0000${batch.notificationId}\u0000${batch.partition}`;
    let b = this.buffers.get(key);
    if (!b) this.buffers.set(key, (b = { batch, dispatched: [], attempted: [], succeeded: [], failed: [], expired: [] }));
    return b;
  }

  private added(n = 1): void {
    this.size += n;
    if (this.size >= (this.deps.maxBuffered ?? 2000)) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        void this.flush();
      }, this.deps.flushMs);
    }
  }

  dispatched(batch: Batch, refs: readonly DeliveryRef[]): void {
    this.buffer(batch).dispatched.push(...refs);
    this.added(refs.length);
  }

  attempted(batch: Batch, attempt: Attempt): void {
    this.buffer(batch).attempted.push(attempt);
    this.added();
  }

  /** `possibleCopies`: attempts that may have reached a provider, the accepted one included (1 when none other may have). */
  succeeded(batch: Batch, ref: DeliveryRef, provider: string, possibleCopies: number): void {
    this.buffer(batch).succeeded.push({ ...ref, provider, ...(possibleCopies > 1 ? { possiblyDuplicate: true, possibleCopies } : {}) });
    this.terminals.push({ batch, ref, status: 'succeeded', provider });
    this.added();
  }

  failed(batch: Batch, ref: DeliveryRef, provider: string | null, reason: string): void {
    this.buffer(batch).failed.push({ ...ref, provider, reason });
    this.terminals.push({ batch, ref, status: 'failed', provider });
    this.added();
  }

  expired(batch: Batch, ref: DeliveryRef, reason: string): void {
    this.buffer(batch).expired.push({ ...ref, reason });
    this.terminals.push({ batch, ref, status: 'expired', provider: null });
    this.added();
  }

  deviceInvalidated(batch: Batch, userId: string, deviceId: string, provider: string, reason: string): void {
    this.invalidated.push({ tenantId: batch.tenantId, userId, deviceId, provider, reason, requestedPosition: batch.requestedPosition });
  }

  /** Appends everything buffered; resolves with the position of the last event appended. */
  async flush(): Promise<number> {
    while (this.flushing) await this.flushing;
    if (this.size === 0 && this.invalidated.length === 0) return this.lastPosition;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const buffers = [...this.buffers.values()];
    const invalidated = this.invalidated;
    const terminals = this.terminals;
    this.buffers = new Map();
    this.invalidated = [];
    this.terminals = [];
    this.size = 0;
    this.flushing = this.append(buffers, invalidated).then(
      (position) => {
        this.lastPosition = Math.max(this.lastPosition, position);
        this.deps.onFlushed(terminals, this.lastPosition);
        return this.lastPosition;
      },
      (e) => {
        this.deps.onError(e);
        throw e;
      },
    );
    try {
      return await this.flushing;
    } finally {
      this.flushing = null;
    }
  }

  private async append(buffers: readonly Buffered[], invalidated: Recorder['invalidated']): Promise<number> {
    const at = this.deps.now().toISOString();
    const meta = (tenantId: string, requestId: string): EventMetadata => ({ tenantId, actor: 'system', requestId, at });
    const appends: StreamAppend[] = [];
    for (const b of buffers) {
      const { tenantId, notificationId, partition, requestedPosition, requestedAt } = b.batch;
      const common = { notificationId, requestedPosition, requestedAt };
      const m = meta(tenantId, `delivery-${notificationId}`);
      const events: NewEvent[] = [];
      if (b.dispatched.length) events.push({ type: 'DeliveryDispatched', data: { ...common, deliveries: b.dispatched }, metadata: m });
      if (b.attempted.length) events.push({ type: 'DeliveryAttempted', data: { ...common, deliveries: b.attempted }, metadata: m });
      if (b.succeeded.length) events.push({ type: 'DeliverySucceeded', data: { ...common, deliveries: b.succeeded }, metadata: m });
      if (b.failed.length) events.push({ type: 'DeliveryFailed', data: { ...common, deliveries: b.failed }, metadata: m });
      if (b.expired.length) events.push({ type: 'DeliveryExpired', data: { ...common, deliveries: b.expired }, metadata: m });
      if (events.length) appends.push({ streamName: streams.deliveries(tenantId, notificationId, partition), events, expectedRevision: 'any' });
    }
    for (const i of invalidated) {
      appends.push({
        streamName: streams.user(i.tenantId, i.userId),
        events: [{ type: 'DeviceInvalidated', data: { userId: i.userId, deviceId: i.deviceId, provider: i.provider, reason: i.reason, requestedPosition: i.requestedPosition }, metadata: meta(i.tenantId, 'delivery') }],
        // Only onto an existing user: an erased user's stream takes nothing more.
        expectedRevision: 'stream_exists',
      });
    }
    if (appends.length === 0) return this.lastPosition;
    return (await this.deps.eventStore.appendToStreams(appends)).lastPosition;
  }

  async close(): Promise<void> {
    await this.flush();
    if (this.timer) clearTimeout(this.timer);
  }
}

