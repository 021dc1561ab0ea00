import type { AnyEvent, RecordedEvent } from '#schema/events';
import type { WebhookEvent } from '#schema/webhooks';
import type { EventStore, Subscription } from '#platform/event-store/port';
import type { Change, ReadStore } from '#platform/read-store/port';
import type { Logger } from '#platform/logger';
import { processHealth, type ComponentHealth, type Health } from '#platform/health';
import {
  WEBHOOK_ATTEMPTS,
  WEBHOOK_ENDPOINTS,
  WEBHOOK_OUTBOX,
  WEBHOOK_SENDERS,
  outboxDocId,
  outboxOrder,
  type WebhookEndpointDocument,
  type WebhookOutboxDocument,
} from '#projections/webhooks/document';
import { evolveWebhookEndpoint } from '#projections/webhooks/evolve';
import { SOURCE_EVENT_TYPES, messagesOf } from './messages';

export const OUTBOX_CHECKPOINT = 'webhooks';

const WEBHOOK_EVENT_TYPES = [
  'WebhookEndpointRegistered',
  'WebhookEndpointChanged',
  'WebhookEndpointRemoved',
  'WebhookEndpointDisabled',
  'WebhookEndpointEnabled',
] as const satisfies readonly WebhookEvent['type'][];
const isWebhookEvent = (e: RecordedEvent<AnyEvent>): e is RecordedEvent<WebhookEvent> => (WEBHOOK_EVENT_TYPES as readonly string[]).includes(e.type);

/** A commit holds at most about this many changes (an event's messages are never split). */
const MAX_CHANGES = 2_000;

export type OutboxDeps = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  logger: Logger;
  /** After each commit: the endpoints that got messages or changed. */
  onCommitted: (endpointKeys: ReadonlySet<string>) => void;
  /** Where the outbox reports whether it works (default: the process's registry). */
  health?: Health;
}>;

/**
 * The outbox projection: follows the log from its checkpoint and, in ONE commit with the
 * checkpoint, records the endpoint registry's changes and every message for the endpoints
 * subscribed to it at that point of the log. A crash before the commit redoes the batch; after
 * it, nothing is redone. Disabled endpoints keep getting messages (they resume where they
 * stopped, without a gap); a removed endpoint's outbox, state and attempts go with it.
 */
export class WebhookOutbox {
  private subscription: Subscription | null = null;
  private checkpoint: number | null = null;
  private stopped = false;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private health: ComponentHealth | null = null;

  constructor(private readonly deps: OutboxDeps) {}

  async start(): Promise<void> {
    this.checkpoint = await this.deps.readStore.checkpoint(OUTBOX_CHECKPOINT);
    this.health = (this.deps.health ?? processHealth).register('webhook-outbox');
    this.subscribe();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.subscription?.stop();
    this.health?.remove();
  }

  /** False from a failure until a commit succeeds again. */
  get healthy(): boolean {
    return this.health?.healthy ?? false;
  }

  /** Resolves once everything up to `position` is in the outbox. */
  caughtUp(position: number): Promise<void> {
    if (!this.subscription) return Promise.reject(new Error('the webhook outbox is not running'));
    return this.subscription.caughtUp(position);
  }

  private subscribe(): void {
    this.subscription = this.deps.eventStore.subscribe({
      after: this.checkpoint ?? 0,
      types: [...SOURCE_EVENT_TYPES, ...WEBHOOK_EVENT_TYPES],
      batchSize: 100,
      handler: (events) => this.handle(events),
      onError: (e) => this.restart(e),
    });
  }

  /** Any failure (a store away, another process that moved the checkpoint): resume from the stored checkpoint. */
  private restart(error: unknown): void {
    if (this.stopped) return;
    this.failures++;
    this.health?.failing(error);
    const waitMs = Math.min(30_000, 100 * 2 ** Math.min(this.failures, 9));
    this.deps.logger.warn({ err: error, waitMs }, 'webhook outbox stopped; resuming from its checkpoint');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopped) return;
      this.deps.readStore.checkpoint(OUTBOX_CHECKPOINT).then(
        (checkpoint) => {
          if (this.stopped) return;
          this.checkpoint = checkpoint;
          this.subscribe();
          // Healthy again once the new subscription has caught up with the log (a quiet log commits nothing).
          const subscription = this.subscription;
          this.deps.eventStore.headPosition().then((head) => subscription?.caughtUp(head)).then(
            () => {
              if (this.subscription === subscription && !this.stopped) this.health?.ok();
            },
            () => undefined,
          );
        },
        (e) => this.restart(e),
      );
    }, waitMs);
    this.restartTimer.unref();
  }

  private async handle(events: readonly RecordedEvent<AnyEvent>[]): Promise<void> {
    if (this.stopped) return;
    const { readStore } = this.deps;
    const registries = new Map<string, Map<string, WebhookEndpointDocument>>();
    const registry = async (tenantId: string) => {
      let r = registries.get(tenantId);
      if (!r) {
        // At most MAX_WEBHOOK_ENDPOINTS (10) per tenant.
        const page = await readStore.find<WebhookEndpointDocument>(WEBHOOK_ENDPOINTS, { tenantId }, { limit: 100 });
        registries.set(tenantId, (r = new Map(page.items.map((d) => [d.endpointId, d]))));
      }
      return r;
    };
    let changes: Change[] = [];
    const dirty = new Map<string, WebhookEndpointDocument | null>();
    const touched = new Set<string>();

    const flush = async (position: number) => {
      for (const [id, doc] of dirty) changes.push(doc ? { op: 'put', collection: WEBHOOK_ENDPOINTS, doc } : { op: 'delete', collection: WEBHOOK_ENDPOINTS, id });
      await readStore.commit({ checkpoints: [{ name: OUTBOX_CHECKPOINT, expected: this.checkpoint, next: position }], changes });
      this.checkpoint = position;
      this.failures = 0;
      this.health?.ok();
      changes = [];
      dirty.clear();
      if (touched.size > 0) this.deps.onCommitted(new Set(touched));
      touched.clear();
    };

    for (const e of events) {
      const tenantId = e.metadata.tenantId;
      if (isWebhookEvent(e)) {
        const endpoints = await registry(tenantId);
        const before = endpoints.get(e.data.endpointId) ?? null;
        const after = evolveWebhookEndpoint(before, e);
        if (after === before) continue;
        const key = after?.id ?? before!.id;
        if (after) endpoints.set(after.endpointId, after);
        else {
          endpoints.delete(e.data.endpointId);
          changes.push(
            { op: 'deleteWhere', collection: WEBHOOK_OUTBOX, filter: { endpointKey: key } },
            { op: 'delete', collection: WEBHOOK_SENDERS, id: key },
            { op: 'deleteWhere', collection: WEBHOOK_ATTEMPTS, filter: { endpointKey: key } },
          );
        }
        dirty.set(key, after);
        touched.add(key);
      } else {
        const messages = messagesOf(e);
        if (messages.length === 0) continue;
        const endpoints = await registry(tenantId);
        for (const endpoint of endpoints.values()) {
          let queued = 0;
          messages.forEach((message, n) => {
            if (!endpoint.events.includes(message.type)) return;
            const doc: WebhookOutboxDocument = { id: outboxDocId(endpoint.id, e.position, n), endpointKey: endpoint.id, order: outboxOrder(e.position, n), message };
            changes.push({ op: 'put', collection: WEBHOOK_OUTBOX, doc });
            queued++;
          });
          if (queued === 0) continue;
          const updated = { ...endpoint, queued: endpoint.queued + queued };
          endpoints.set(endpoint.endpointId, updated);
          dirty.set(updated.id, updated);
          touched.add(updated.id);
        }
      }
      if (changes.length + dirty.size >= MAX_CHANGES) await flush(e.position);
    }
    const last = events.at(-1)?.position;
    if (last !== undefined && (changes.length > 0 || dirty.size > 0 || last > (this.checkpoint ?? 0))) await flush(last);
  }
}
