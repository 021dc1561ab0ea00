import type { Event } from '#platform/event-store/event';
import type { Sealed } from '#platform/crypto/personal-data';
import type { Command } from './commands';
import { badInput } from './errors';

/**
 * Status webhooks: a tenant's endpoints and what they subscribe to. One stream per tenant
 * (`streams.webhooks`). The signing secret travels only sealed with the tenant's data key;
 * `secretHint` (its last characters) lets an admin tell which secret a receiver holds.
 */
export const WEBHOOK_EVENT_TYPES = ['notification.completed', 'delivery.failed', 'delivery.confirmed', 'device.invalidated', 'user.shredded'] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Endpoints one tenant may have. */
export const MAX_WEBHOOK_ENDPOINTS = 10;
export const MAX_WEBHOOK_URL_LENGTH = 2048;

// ---- events --------------------------------------------------------------------------------
export type WebhookEndpointRegistered = Event<
  'WebhookEndpointRegistered',
  { endpointId: string; url: string; events: readonly WebhookEventType[]; secret: Sealed; secretHint: string }
>;
/** The endpoint's new URL and event types (both given, changed or not). */
export type WebhookEndpointChanged = Event<'WebhookEndpointChanged', { endpointId: string; url: string; events: readonly WebhookEventType[] }>;
export type WebhookEndpointRemoved = Event<'WebhookEndpointRemoved', { endpointId: string }>;
/** The dispatcher gave up after continuous failure since `failingSince`; nothing is sent until enabled. */
export type WebhookEndpointDisabled = Event<'WebhookEndpointDisabled', { endpointId: string; reason: string; failingSince: string }>;
/** Sending resumes with the first message not yet delivered. */
export type WebhookEndpointEnabled = Event<'WebhookEndpointEnabled', { endpointId: string }>;
export type WebhookEvent = WebhookEndpointRegistered | WebhookEndpointChanged | WebhookEndpointRemoved | WebhookEndpointDisabled | WebhookEndpointEnabled;

// ---- commands ------------------------------------------------------------------------------
/** `url` and `events` are parsed by the use case (the URL policy is configuration); `secret` is sealed already. */
export type RegisterWebhookEndpoint = Command<
  'RegisterWebhookEndpoint',
  { endpointId: string; url: string; events: readonly WebhookEventType[]; secret: Sealed; secretHint: string }
>;
/** Absent fields stay as they are. */
export type ChangeWebhookEndpoint = Command<'ChangeWebhookEndpoint', { endpointId: string; url?: string; events?: readonly WebhookEventType[] }>;
export type RemoveWebhookEndpoint = Command<'RemoveWebhookEndpoint', { endpointId: string }>;
/**
 * From the dispatcher, about the endpoint as it was at `version` (see the decider): a report about
 * a failure streak from before the last change or enable changes nothing.
 */
export type DisableWebhookEndpoint = Command<'DisableWebhookEndpoint', { endpointId: string; reason: string; failingSince: string; version: number }>;
export type EnableWebhookEndpoint = Command<'EnableWebhookEndpoint', { endpointId: string }>;
export type WebhookCommand = RegisterWebhookEndpoint | ChangeWebhookEndpoint | RemoveWebhookEndpoint | DisableWebhookEndpoint | EnableWebhookEndpoint;

// ---- values --------------------------------------------------------------------------------
export type WebhookUrlPolicy = Readonly<{
  /** Also accept plain http to localhost, 127.0.0.1 or [::1] (development and tests). */
  allowHttpLocalhost?: boolean;
}>;

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * An endpoint URL: https (or, when the policy allows, http to this machine), at most 2048
 * characters, no credentials (the signature authenticates us; a password would sit in the log in
 * clear) and no fragment.
 */
export const parseWebhookUrl = (field: string, value: unknown, policy: WebhookUrlPolicy = {}): string => {
  if (typeof value !== 'string' || value.trim() === '') throw badInput(field, 'give the endpoint URL');
  const raw = value.trim();
  if (raw.length > MAX_WEBHOOK_URL_LENGTH) throw badInput(field, `${raw.length} characters, the limit is ${MAX_WEBHOOK_URL_LENGTH}`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput(field, 'not a valid absolute URL');
  }
  if (url.username || url.password) throw badInput(field, 'must not hold credentials; verify our signature instead');
  if (url.hash) throw badInput(field, 'must not have a fragment (#...)');
  if (url.protocol === 'http:') {
    if (!policy.allowHttpLocalhost || !LOCAL_HOSTS.has(url.hostname)) throw badInput(field, 'must use https');
  } else if (url.protocol !== 'https:') {
    throw badInput(field, `must use https, not ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.href.length > MAX_WEBHOOK_URL_LENGTH) throw badInput(field, `${url.href.length} characters once normalized, the limit is ${MAX_WEBHOOK_URL_LENGTH}`);
  return url.href;
};

export const isWebhookEventType = (s: unknown): s is WebhookEventType => (WEBHOOK_EVENT_TYPES as readonly unknown[]).includes(s);

/** One or more known event types, each once, in the order of WEBHOOK_EVENT_TYPES. */
export const parseWebhookEventTypes = (field: string, list: unknown): WebhookEventType[] => {
  if (!Array.isArray(list) || list.length === 0) throw badInput(field, `give one or more of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
  list.forEach((t, i) => {
    if (!isWebhookEventType(t)) throw badInput(`${field}[${i}]`, `"${String(t).slice(0, 40)}" is not one of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
  });
  return WEBHOOK_EVENT_TYPES.filter((t) => list.includes(t));
};
