import type { ReadStore } from '#platform/read-store/port';
import {
  WEBHOOK_ATTEMPTS,
  WEBHOOK_ENDPOINTS,
  WEBHOOK_SENDERS,
  endpointKey,
  webhookCollections,
  type WebhookAttemptDocument,
  type WebhookEndpointDocument,
  type WebhookSenderDocument,
} from './document';

/** A process that only reads (the API role) may not have declared the dispatcher's collections. */
const declared = new WeakMap<ReadStore, Promise<void>>();
const ready = (store: ReadStore): Promise<void> => {
  let p = declared.get(store);
  if (!p) {
    p = store.ensureCollections(webhookCollections);
    p.catch(() => declared.delete(store));
    declared.set(store, p);
  }
  return p;
};

export type WebhookDeliveryStatus = Readonly<{
  /** Messages queued and not yet delivered. */
  pending: number;
  failingSince: string | null;
  lastSuccessAt: string | null;
}>;

const IDLE: WebhookDeliveryStatus = { pending: 0, failingSince: null, lastSuccessAt: null };

/** How far each endpoint's sender got, by endpoint id (idle when the dispatcher has not seen it yet). */
export const webhookStatuses = async (store: ReadStore, tenantId: string, endpointIds: readonly string[]): Promise<ReadonlyMap<string, WebhookDeliveryStatus>> => {
  await ready(store);
  const keys = endpointIds.map((id) => endpointKey(tenantId, id));
  const registry = new Map((await store.getMany<WebhookEndpointDocument>(WEBHOOK_ENDPOINTS, keys)).map((d) => [d.endpointId, d]));
  const senders = new Map((await store.getMany<WebhookSenderDocument>(WEBHOOK_SENDERS, keys)).map((d) => [d.endpointId, d]));
  return new Map(endpointIds.map((id) => {
    const queued = registry.get(id)?.queued ?? 0;
    const sender = senders.get(id);
    return [id, sender ? { pending: Math.max(0, queued - sender.sent), failingSince: sender.failingSince, lastSuccessAt: sender.lastSuccessAt } : { ...IDLE, pending: queued }];
  }));
};

/** An endpoint's latest requests, newest first. */
export const listWebhookAttempts = async (store: ReadStore, tenantId: string, endpointId: string, first: number): Promise<readonly WebhookAttemptDocument[]> => {
  await ready(store);
  const page = await store.find<WebhookAttemptDocument>(WEBHOOK_ATTEMPTS, { endpointKey: endpointKey(tenantId, endpointId) }, { limit: first, sort: { field: 'n', direction: 'desc' } });
  return page.items;
};
