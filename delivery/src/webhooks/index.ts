import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { LeaseStore } from '#platform/lease/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import {
  WEBHOOK_ENDPOINTS,
  WEBHOOK_SENDERS,
  webhookCollections,
  type WebhookEndpointDocument,
  type WebhookSenderDocument,
} from '#projections/webhooks/document';
import type { WebhookConfig } from './config';
import { WebhookOutbox } from './outbox';
import { EndpointSender, Slots, type SenderDeps } from './sender';

export type WebhookDispatcherDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  cipher: PersonalDataCipher;
  clock: Clock;
  logger: Logger;
  config: WebhookConfig;
  /** How requests are made (default: the global fetch). */
  fetch?: typeof fetch;
  /** Jitter source (default Math.random). */
  random?: () => number;
  /**
   * Where several delivery processes run, pass the lease store: only the holder of the
   * `webhooks` lease dispatches, so each endpoint has one sender and its order holds. Without
   * it this process dispatches unconditionally (one delivery process).
   */
  leases?: LeaseStore;
  /** Unique per process: the lease holder's name. */
  instanceId?: string;
}>;

export type WebhookDispatcher = Readonly<{
  stop(): Promise<void>;
  /** Resolves once the outbox holds every message of the log up to `position` (this process must be dispatching). */
  caughtUp(position: number): Promise<void>;
  /** Whether this process dispatches (holds the lease, or runs without one). */
  readonly active: boolean;
}>;

const LEASE = 'webhooks';

/** The senders of every endpoint with something to send, one per endpoint. */
class Senders {
  private readonly loops = new Map<string, EndpointSender>();
  /** Endpoints this process disabled, at that version: not restarted before the log says otherwise. */
  private readonly parked = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  /** A sync was asked for while one ran (it may have passed the endpoint already): run again. */
  private again = false;
  private stopped = false;

  constructor(private readonly deps: SenderDeps) {}

  start(): void {
    void this.sync();
    this.timer = setInterval(() => void this.sync(), this.deps.config.rescanMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    await Promise.all([...this.loops.values()].map((l) => l.stop()));
  }

  /** After a projection commit: wake the senders of these endpoints, or start them. */
  poke(keys: ReadonlySet<string>): void {
    let missing = false;
    for (const key of keys) {
      const loop = this.loops.get(key);
      if (loop && loop.exited === null) loop.poke();
      else missing = true;
    }
    if (missing) void this.sync();
  }

  private launch(endpoint: WebhookEndpointDocument): void {
    if (this.stopped || this.running(endpoint.id)) return;
    const parked = this.parked.get(endpoint.id);
    if (parked !== undefined && parked === endpoint.version) return;
    this.parked.delete(endpoint.id);
    const loop: EndpointSender = new EndpointSender(this.deps, endpoint.id, (exit) => {
      if (this.loops.get(endpoint.id) === loop) this.loops.delete(endpoint.id);
      if (exit.kind === 'disabled') this.parked.set(endpoint.id, exit.version);
    });
    this.loops.set(endpoint.id, loop);
  }

  private running(key: string): boolean {
    const loop = this.loops.get(key);
    return loop !== undefined && loop.exited === null;
  }

  /** Starts a sender for every enabled endpoint with messages pending or a failure streak. */
  sync(): Promise<void> {
    if (this.syncing) {
      this.again = true;
      return this.syncing;
    }
    this.syncing = this.scan()
      .catch((e) => this.deps.logger.warn({ err: e }, 'webhook senders: scan failed; will retry'))
      .finally(() => {
        this.syncing = null;
        if (this.again && !this.stopped) {
          this.again = false;
          void this.sync();
        }
      });
    return this.syncing;
  }

  private async scan(): Promise<void> {
    const { readStore } = this.deps;
    let after: string | undefined;
    do {
      const page = await readStore.find<WebhookEndpointDocument>(WEBHOOK_ENDPOINTS, {}, { limit: 500, ...(after ? { after } : {}) });
      const enabled = page.items.filter((d) => d.status === 'enabled' && !this.running(d.id));
      const senders = new Map((await readStore.getMany<WebhookSenderDocument>(WEBHOOK_SENDERS, enabled.map((d) => d.id))).map((s) => [s.id, s]));
      for (const endpoint of enabled) {
        const sender = senders.get(endpoint.id);
        if (endpoint.queued > (sender?.sent ?? 0) || (sender && sender.failures > 0)) this.launch(endpoint);
      }
      after = page.next ?? undefined;
    } while (after && !this.stopped);
  }
}

/**
 * Status webhooks out: the outbox projection (the log's relevant events become messages for the
 * subscribed endpoints, committed with its checkpoint) and a sender per endpoint (log order,
 * batched, signed per Standard Webhooks, retried, disabled after failing continuously).
 */
export const startWebhookDispatcher = async (deps: WebhookDispatcherDeps): Promise<WebhookDispatcher> => {
  await deps.readStore.ensureCollections(webhookCollections);
  const senderDeps: SenderDeps = {
    eventStore: deps.eventStore,
    readStore: deps.readStore,
    cipher: deps.cipher,
    clock: deps.clock,
    logger: deps.logger,
    config: deps.config,
    fetch: deps.fetch ?? globalThis.fetch,
    random: deps.random ?? Math.random,
    slots: new Slots(deps.config.concurrency),
  };
  let running: { outbox: WebhookOutbox; senders: Senders } | null = null;
  let stopped = false;
  // Activation and deactivation take turns.
  let turn: Promise<void> = Promise.resolve();
  const exclusive = (fn: () => Promise<void>) => (turn = turn.then(fn, fn));

  const activate = () => exclusive(async () => {
    if (running || stopped) return;
    const senders = new Senders(senderDeps);
    const outbox = new WebhookOutbox({ eventStore: deps.eventStore, readStore: deps.readStore, logger: deps.logger, onCommitted: (keys) => senders.poke(keys) });
    await outbox.start();
    senders.start();
    running = { outbox, senders };
  });
  const deactivate = () => exclusive(async () => {
    const r = running;
    running = null;
    if (!r) return;
    await r.outbox.stop();
    await r.senders.stop();
  });

  let leaseTimer: NodeJS.Timeout | null = null;
  let holding = false;
  const { leases } = deps;
  const instanceId = deps.instanceId ?? `webhooks-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const renew = async () => {
    if (!leases || stopped) return;
    try {
      const held = await leases.acquire(LEASE, instanceId, deps.config.leaseTtlMs);
      if (held && !holding) deps.logger.info({ instance: instanceId }, 'webhook dispatcher: leading');
      if (!held && holding) deps.logger.warn({ instance: instanceId }, 'webhook dispatcher: lease lost');
      holding = held;
    } catch (e) {
      holding = false;
      deps.logger.error({ err: e }, 'webhook dispatcher: lease renewal failed');
    }
    try {
      await (holding ? activate() : deactivate());
    } catch (e) {
      deps.logger.error({ err: e }, 'webhook dispatcher: could not start or stop; will retry');
    }
  };

  if (leases) {
    await renew();
    leaseTimer = setInterval(() => void renew(), Math.max(100, Math.floor(deps.config.leaseTtlMs / 3)));
    leaseTimer.unref();
  } else {
    await activate();
  }

  return {
    get active() {
      return running !== null;
    },
    caughtUp: (position) => (running ? running.outbox.caughtUp(position) : Promise.reject(new Error('this process is not dispatching webhooks'))),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      if (leaseTimer) clearInterval(leaseTimer);
      await deactivate();
      if (leases && holding) await leases.release(LEASE, instanceId).catch(() => undefined);
    },
  };
};

export { defaultWebhookConfig, readWebhookConfig, type WebhookConfig } from './config';
