import type { CollectionSpec } from '#platform/read-store/port';
import type { Sealed } from '#schema/events';
import type { WebhookEventType } from '#schema/webhooks';

/**
 * The webhook dispatcher's documents (delivery/src/webhooks writes them; the API reads them).
 * One endpoint is `<tenantId>.<endpointId>` everywhere: its registry entry, its outbox, its
 * sender's state and its attempts.
 *
 * - endpoints: what the dispatcher knows of the log's endpoints, as of its checkpoint (written
 *   in the same commit as the outbox, so a message goes to the endpoints that existed then);
 * - outbox: messages not yet delivered, in log order per endpoint (the projection puts them,
 *   the endpoint's sender deletes them once the receiver answered 2xx);
 * - senders: each sender's progress and failure streak (the sender's own document);
 * - attempts: the last 100 requests per endpoint.
 */
export const WEBHOOK_ENDPOINTS = 'webhook_endpoints';
export const WEBHOOK_OUTBOX = 'webhook_outbox';
export const WEBHOOK_SENDERS = 'webhook_senders';
export const WEBHOOK_ATTEMPTS = 'webhook_attempts';
/** Attempts kept per endpoint. */
export const WEBHOOK_ATTEMPTS_KEPT = 100;

export const endpointKey = (tenantId: string, endpointId: string): string => `${tenantId}.${endpointId}`;

/** A message as it is posted (a request's body is a JSON array of them): ids and codes only. */
export type WebhookMessage = Readonly<{
  /** `msg_<position>_<n>`: the event's log position and the message's index among its messages. Receivers deduplicate on it. */
  id: string;
  type: WebhookEventType;
  /** When it happened (ISO-8601). */
  timestamp: string;
  data: Readonly<Record<string, string | number | null>>;
}>;

export type WebhookEndpointDocument = Readonly<{
  id: string;
  tenantId: string;
  endpointId: string;
  url: string;
  events: readonly WebhookEventType[];
  secret: Sealed;
  status: 'enabled' | 'disabled';
  /** As in the decider: 1 at registration, bumped by every change and every enable. */
  version: number;
  /** Messages ever queued for the endpoint; minus the sender's `sent`, what is pending. */
  queued: number;
  /** Log position of the last event applied to this document. */
  position: number;
}>;

export type WebhookOutboxDocument = Readonly<{
  id: string;
  endpointKey: string;
  /** Sorts as the log does: zero-padded position, then the message's index. */
  order: string;
  message: WebhookMessage;
}>;

export type WebhookSenderDocument = Readonly<{
  id: string;
  tenantId: string;
  endpointId: string;
  /** The endpoint version this state is about; another version starts a fresh streak. */
  version: number;
  /** Messages delivered (2xx). */
  sent: number;
  /** Requests made, numbering the attempts. */
  attempts: number;
  /** Failed requests in a row. */
  failures: number;
  failingSince: string | null;
  lastSuccessAt: string | null;
}>;

export type WebhookAttemptDocument = Readonly<{
  id: string;
  endpointKey: string;
  n: number;
  at: string;
  /** The request's `webhook-id`. */
  webhookId: string;
  messages: number;
  /** The HTTP status, or null when no answer came (see `error`). */
  status: number | null;
  /** A code: `http-<status>`, a network error code (ECONNREFUSED), `timeout`, `secret-unavailable`. Never the receiver's text. */
  error: string | null;
  durationMs: number;
  ok: boolean;
}>;

const pad = (n: number, width: number): string => String(n).padStart(width, '0');
export const outboxOrder = (position: number, n: number): string => `${pad(position, 16)}.${pad(n, 6)}`;
export const outboxDocId = (key: string, position: number, n: number): string => `${key}:${outboxOrder(position, n)}`;
export const attemptDocId = (key: string, n: number): string => `${key}:${pad(n, 12)}`;

export const webhookCollections: readonly CollectionSpec[] = [
  { name: WEBHOOK_ENDPOINTS, indexes: [[], ['tenantId']] },
  { name: WEBHOOK_OUTBOX, indexes: [['endpointKey']], sortFields: ['order'] },
  { name: WEBHOOK_SENDERS, indexes: [['tenantId']] },
  { name: WEBHOOK_ATTEMPTS, indexes: [['endpointKey']], sortFields: ['n'] },
];
