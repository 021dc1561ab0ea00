import type { Context } from '@opentelemetry/api';
import type { DeliveryRef } from '#schema/events';
import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { JobBus } from '#platform/bus/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import type { DeliveryConfig } from '../config';
import type { ProviderRouter } from '../routing/router';
import type { Batch } from '../recorder';
import type { DeliveryMetrics } from '../metrics';
import type { SliceJob } from '../job';
import { SendWindow } from './window';

export type WorkerDeps = Readonly<{
  bus: JobBus;
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  router: ProviderRouter;
  clock: Clock;
  logger: Logger;
  config: DeliveryConfig;
  metrics?: DeliveryMetrics;
  /** Resolves once the read models (users, the delivery ledger) reflect the log up to `position`. */
  readModelsCaughtUp: (position: number) => Promise<void>;
  /** Told this worker's share of the partitions (owned over all) on every rebalance: its share of each quota. */
  onShare?: (fraction: number) => void;
  /** How long a partition gained from a live member may take to finish its sends (shared groups only). */
  handoverMs?: number;
  /**
   * Dispatch rounds in flight at once (default 1), each waiting for its intent's append before its
   * sends; where the projections run elsewhere (app.ts) more overlap.
   */
  dispatchRounds?: number;
}>;

/** Where the time-sized window starts and the least it holds: a provider that hangs holds its calls (up to its concurrency) until their deadline. */
const MIN_WINDOW = 200;

/** Longer than any provider call may take (their timeouts), plus a flush. */
export const DEFAULT_HANDOVER_MS = 12_000;

/** A bus message: its offset is committed once none of its deliveries remains without an outcome. */
export type Message = { partition: number; offset: number; remaining: number };

/** One notification's state for one partition: the partition's owner alone writes its delivery stream. */
export type Notification = {
  text: string;
  /** Handed to a provider before a crash with no outcome logged: bounded by the in-flight limit. */
  inFlightAtCrash: Set<string>;
  /** Position of the last event read from the partition's log: the read models must reach it before being asked. */
  seenPosition: number;
  /** Planned (in the log) and not yet ended when this worker took the partition: sent first. */
  plannedOpen: Map<string, DeliveryRef>;
  /** Where the slice's next page starts (null: from the beginning), and whether it is all planned. */
  cursor: string | null;
  planned: boolean;
  /** The send's trace (from the bus message's headers) that planning and provider calls continue. */
  trace?: Context;
};

/** One notification's slice of this worker's partition, planned page by page as the queue drains. */
export type Slice = {
  key: string;
  job: SliceJob;
  partition: number;
  deadline: number;
  /** Its place in the queue: the deadline, or after every send that fit (see rankOf). */
  rank: number;
  seq: number;
  message: Message;
  notification: Notification;
  /** The read models include every change accepted before the request (checked once per slice). */
  caughtUp: boolean;
};

export type Item = {
  ref: DeliveryRef;
  batch: Batch;
  deadline: number;
  rank: number;
  seq: number;
  attempts: number;
  notBefore: number;
  possiblyDuplicate: boolean;
  lastReason: string | null;
  /** The integration its last attempt failed on: never that one's half-open probe. */
  lastFailedOn: string | null;
  /** Its DeliveryDispatched intent is in the log (written once, before the first send). */
  dispatched: boolean;
  message: Message;
  notification: Notification;
};

export type Channel = Item['ref']['channel'];

/** The deliveries the worker holds, from intake until their outcome is in the log. */
export class Pending {
  /** Deliveries queued, delayed or in flight: a second copy of one (a replayed job) is dropped. */
  readonly active = new Map<string, Item>();
  /** Items from their dispatch round until their outcome (or until dropped): the in-flight window, and what a revocation waits for. */
  readonly sending: SendWindow<Item>;
  private space: (() => void) | null = null;
  private readonly maxPending: number;

  constructor(config: Pick<DeliveryConfig, 'maxPending' | 'maxInFlight' | 'windowMs'>) {
    this.maxPending = config.maxPending;
    this.sending = new SendWindow({ max: config.maxInFlight, targetMs: config.windowMs, min: MIN_WINDOW });
  }

  get full(): boolean {
    return this.active.size >= this.maxPending;
  }

  /** The item leaves this worker without an outcome (its partition went to another). */
  leave(item: Item): void {
    this.sending.delete(item);
    this.active.delete(item.ref.deliveryId);
  }

  /** Resolves when intake may go on: room was made, or the worker stops. */
  async room(): Promise<void> {
    await new Promise<void>((resolve) => (this.space = resolve));
    this.space = null;
  }

  released(): void {
    if (this.active.size < this.maxPending) this.space?.();
  }

  unblock(): void {
    this.space?.();
  }
}

/** Dispatch rounds and sends under way: stopping waits for all of them. */
export class Tasks {
  private readonly running = new Set<Promise<void>>();

  track(task: Promise<void>): void {
    const tracked: Promise<void> = task.finally(() => this.running.delete(tracked));
    this.running.add(tracked);
  }

  async drain(): Promise<void> {
    // A round that finishes starts its sends: wait until none is left.
    while (this.running.size > 0) await Promise.all([...this.running]);
  }
}
