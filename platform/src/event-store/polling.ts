import type { EventEmitter } from 'node:events';
import { Waker } from '../waker';
import type { ReadAllOptions, SubscribeOptions, Subscription } from './port';
import type { RecordedEvent } from './event';

/**
 * What an 'append' may tell beyond "something was appended": the append's last position and its
 * event types. `ordered`: notices come in commit order, one for every append (PostgreSQL's
 * NOTIFY, appends being serialized), so a reader of some types can move past an append of other
 * types without reading the log; a notice that is not ordered (this process's own append, whose
 * ordered notice follows) wakes such a reader only for its types.
 */
export type AppendNotice = Readonly<{ position: number; types: readonly string[]; ordered: boolean }>;

/** What a store that is read by polling offers its subscriptions. */
export type PollingSource = Readonly<{
  head: () => number | Promise<number>;
  readAll: (options: ReadAllOptions) => readonly RecordedEvent[] | Promise<readonly RecordedEvent[]>;
  /** Emits 'append' (with an `AppendNotice` where the store has one) on every append through this store object (and, for PostgreSQL, on NOTIFY). */
  appended: EventEmitter;
  closed: () => boolean;
  /** Poll for appends by other processes that no 'append' reports. */
  pollMs: number;
}>;

/**
 * A subscription of a store read by polling (SQLite, PostgreSQL): catch up in batches, then follow
 * live, woken by appends and polling as a fallback. `caughtUp(p)` resolves once every event up to
 * p has been handed to the handler and the handler has finished.
 */
export const pollingSubscription = (source: PollingSource, o: SubscribeOptions, onEnd: (s: Subscription) => void): Subscription => {
  const batchSize = o.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  let delivered = o.after;
  let stopping = false;
  let ended = false;
  const waker = new Waker(source.pollMs);
  const waiters: { position: number; resolve: () => void; reject: (e: unknown) => void }[] = [];
  // A reader of few types (revocations, erasures, requests) would otherwise read the head and the
  // log for every append of a fan-out: it reads when its types may have been appended, or the poll
  // found nothing to go by, and otherwise moves on to where the ordered notices say the log is.
  const types = o.types ? new Set(o.types) : null;
  let mustRead = true;
  let noticedTo = 0;
  const onAppend = (notice?: AppendNotice): void => {
    if (types && notice && !notice.types.some((t) => types.has(t))) {
      if (!notice.ordered) return;
      noticedTo = Math.max(noticedTo, notice.position);
    } else mustRead = true;
    waker.notify();
  };
  source.appended.on('append', onAppend);

  const settleWaiters = () => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.position <= delivered) waiters.splice(i, 1)[0]!.resolve();
    }
  };

  const run = async (): Promise<void> => {
    try {
      while (!stopping && !source.closed()) {
        // Consumed before reading: an append notified from here on is read by this pass or the next.
        waker.consume();
        if (types && !mustRead) {
          // Only appends of other types since the last read (their notices came in order).
          if (noticedTo > delivered) {
            delivered = noticedTo;
            settleWaiters();
          }
        } else {
          mustRead = false;
          // With a type filter, read the head first: everything up to it has then been seen,
          // matching or not, so progress (and caughtUp) moves past events of other types.
          const seenUpTo = o.types ? await source.head() : 0;
          const events = await source.readAll({ after: delivered, maxCount: batchSize, ...(o.types ? { types: o.types } : {}) });
          if (events.length > 0) await o.handler(events);
          const last = events.length > 0 ? events[events.length - 1]!.position : delivered;
          delivered = events.length < batchSize ? Math.max(last, seenUpTo) : last;
          settleWaiters();
          if (stopping || source.closed()) break;
          if (events.length === batchSize) mustRead = true;
          if (events.length === batchSize || waker.woken) {
            // Catching up: let timers and I/O of the process run between batches.
            await new Promise<void>((resolve) => setImmediate(resolve));
            continue;
          }
        }
        await waker.sleep();
        // The poll ran out with no notice: read, in case one was lost.
        if (!waker.woken) mustRead = true;
      }
    } catch (e) {
      stopping = true;
      for (const w of waiters.splice(0)) w.reject(e);
      o.onError?.(e);
    } finally {
      ended = true;
      source.appended.off('append', onAppend);
      onEnd(subscription);
      for (const w of waiters.splice(0)) w.reject(new Error('subscription stopped'));
    }
  };

  const subscription: Subscription = {
    progress: () => delivered,
    stop: async () => {
      stopping = true;
      waker.notify();
      await loop;
    },
    caughtUp: (position: number) =>
      position <= delivered
        ? Promise.resolve()
        : stopping || ended
          ? Promise.reject(new Error(`subscription stopped at position ${delivered}, before ${position}`))
          : new Promise<void>((resolve, reject) => waiters.push({ position, resolve, reject })),
  };
  const loop = run();
  return subscription;
};
