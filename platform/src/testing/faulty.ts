import { EventEmitter } from 'node:events';
import { pollingSubscription } from '../event-store/polling';
import type { EventStore, Subscription } from '../event-store/port';
import type { ReadStore } from '../read-store/port';

/**
 * Store errors on demand, for tests of what a process does when a store goes away for a moment:
 * `fail('readAll', 3)` makes the next three calls of that method throw, `failing('commit', true)`
 * every call until switched off. Every other call goes through to the real store.
 */
export class Faults<Op extends string = string> {
  private readonly counts = new Map<string, number>();
  private readonly always = new Set<string>();
  /** Errors thrown so far, by method. */
  readonly thrown = new Map<string, number>();

  fail(op: Op, times = 1): this {
    this.counts.set(op, (this.counts.get(op) ?? 0) + times);
    return this;
  }

  failing(op: Op, on: boolean): this {
    if (on) this.always.add(op);
    else this.always.delete(op);
    return this;
  }

  clear(): void {
    this.counts.clear();
    this.always.clear();
  }

  /** Throws if `op` is to fail now. */
  check(op: string): void {
    const left = this.counts.get(op) ?? 0;
    if (!this.always.has(op) && left === 0) return;
    if (left > 0) this.counts.set(op, left - 1);
    this.thrown.set(op, (this.thrown.get(op) ?? 0) + 1);
    throw new Error(`injected fault: ${op} failed (store unreachable)`);
  }
}

export type EventStoreOp = 'readAll' | 'headPosition' | 'readStream' | 'appendToStream' | 'appendToStreams' | 'chainHead' | 'tenants';
export type ReadStoreOp = 'get' | 'getMany' | 'find' | 'checkpoint' | 'commit' | 'ensureCollections';

/**
 * An event store whose methods fail on demand. Its subscriptions read through the faulty
 * `readAll` and `headPosition` (polling every `pollMs`, woken by appends made through it), so an
 * injected read error ends them exactly as a real one would.
 */
export const faultyEventStore = (inner: EventStore, faults = new Faults<EventStoreOp>(), options: Readonly<{ pollMs?: number }> = {}): EventStore & { faults: Faults<EventStoreOp> } => {
  const appended = new EventEmitter();
  appended.setMaxListeners(0);
  let closed = false;
  const subscriptions = new Set<Subscription>();
  const guard = <A extends unknown[], R>(op: EventStoreOp, fn: (...args: A) => Promise<R>) => async (...args: A): Promise<R> => {
    faults.check(op);
    return fn(...args);
  };
  const store: EventStore & { faults: Faults<EventStoreOp> } = {
    faults,
    appendToStream: async (...args) => {
      faults.check('appendToStream');
      const r = await inner.appendToStream(...args);
      appended.emit('append');
      return r;
    },
    appendToStreams: async (...args) => {
      faults.check('appendToStreams');
      const r = await inner.appendToStreams(...args);
      appended.emit('append');
      return r;
    },
    readStream: guard('readStream', (...args: Parameters<EventStore['readStream']>) => inner.readStream(...args)),
    readAll: guard('readAll', (o: Parameters<EventStore['readAll']>[0]) => inner.readAll(o)),
    headPosition: guard('headPosition', () => inner.headPosition()),
    chainHead: guard('chainHead', (tenantId: string) => inner.chainHead(tenantId)),
    authenticateChainHead: (tenantId, expected) => inner.authenticateChainHead(tenantId, expected),
    tenants: guard('tenants', () => inner.tenants()),
    subscribe: (o) => {
      const s = pollingSubscription(
        { head: () => store.headPosition(), readAll: (r) => store.readAll(r), appended, closed: () => closed, pollMs: options.pollMs ?? 25 },
        o,
        (ended) => subscriptions.delete(ended),
      );
      subscriptions.add(s);
      return s;
    },
    close: async () => {
      await Promise.all([...subscriptions].map((s) => s.stop()));
      closed = true;
      await inner.close();
    },
  };
  return store;
};

/** A read store whose methods fail on demand. */
export const faultyReadStore = (inner: ReadStore, faults = new Faults<ReadStoreOp>()): ReadStore & { faults: Faults<ReadStoreOp> } =>
  new Proxy(inner as ReadStore & { faults: Faults<ReadStoreOp> }, {
    get(target, property, receiver) {
      if (property === 'faults') return faults;
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function' || property === 'close') return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        faults.check(String(property));
        return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
