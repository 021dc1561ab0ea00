import type { Sealed } from '#schema/events';
import { badInput, conflict, notFound } from '#schema/errors';
import {
  MAX_WEBHOOK_ENDPOINTS,
  parseWebhookEventTypes,
  type ChangeWebhookEndpoint,
  type DisableWebhookEndpoint,
  type EnableWebhookEndpoint,
  type RegisterWebhookEndpoint,
  type RemoveWebhookEndpoint,
  type WebhookCommand,
  type WebhookEvent,
  type WebhookEventType,
} from '#schema/webhooks';

export type WebhookEndpoint = Readonly<{
  endpointId: string;
  url: string;
  events: readonly WebhookEventType[];
  secret: Sealed;
  secretHint: string;
  /** Null while enabled. */
  disabled: Readonly<{ reason: string; failingSince: string }> | null;
  /**
   * 1 at registration, bumped by every change and every enable: a failure report about an older
   * version (another URL, or before the admin enabled it again) is stale.
   */
  version: number;
}>;

/** A tenant's endpoints by id. */
export type WebhooksState = Readonly<{ endpoints: ReadonlyMap<string, WebhookEndpoint> }>;

export const initialState = (): WebhooksState => ({ endpoints: new Map() });

const existing = (state: WebhooksState, endpointId: string): WebhookEndpoint => {
  const endpoint = state.endpoints.get(endpointId);
  if (!endpoint) throw notFound(`webhook endpoint ${endpointId}`);
  return endpoint;
};

const sameUrlElsewhere = (state: WebhooksState, url: string, endpointId: string): boolean =>
  [...state.endpoints.values()].some((e) => e.url === url && e.endpointId !== endpointId);

const sameEvents = (a: readonly WebhookEventType[], b: readonly WebhookEventType[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);

const register = ({ data }: RegisterWebhookEndpoint, state: WebhooksState): WebhookEvent[] => {
  if (state.endpoints.has(data.endpointId)) throw conflict(`webhook endpoint ${data.endpointId} already exists`);
  if (state.endpoints.size >= MAX_WEBHOOK_ENDPOINTS) {
    throw badInput('url', `the tenant has ${state.endpoints.size} webhook endpoints, the limit is ${MAX_WEBHOOK_ENDPOINTS}; remove one first`);
  }
  if (sameUrlElsewhere(state, data.url, data.endpointId)) throw conflict('an endpoint with this URL is already registered; change its events instead');
  const events = parseWebhookEventTypes('events', data.events);
  return [{ type: 'WebhookEndpointRegistered', data: { endpointId: data.endpointId, url: data.url, events, secret: data.secret, secretHint: data.secretHint } }];
};

const change = ({ data }: ChangeWebhookEndpoint, state: WebhooksState): WebhookEvent[] => {
  const endpoint = existing(state, data.endpointId);
  const url = data.url ?? endpoint.url;
  const events = data.events === undefined ? endpoint.events : parseWebhookEventTypes('events', data.events);
  if (sameUrlElsewhere(state, url, endpoint.endpointId)) throw conflict('an endpoint with this URL is already registered');
  if (url === endpoint.url && sameEvents(events, endpoint.events)) return [];
  return [{ type: 'WebhookEndpointChanged', data: { endpointId: endpoint.endpointId, url, events } }];
};

const remove = ({ data }: RemoveWebhookEndpoint, state: WebhooksState): WebhookEvent[] => {
  existing(state, data.endpointId);
  return [{ type: 'WebhookEndpointRemoved', data: { endpointId: data.endpointId } }];
};

/** Idempotent, and only about the endpoint's current version (its URL, since its last enable). */
const disable = ({ data, now }: DisableWebhookEndpoint, state: WebhooksState): WebhookEvent[] => {
  const endpoint = state.endpoints.get(data.endpointId);
  if (!endpoint || endpoint.disabled || endpoint.version !== data.version) return [];
  if (Number.isNaN(Date.parse(data.failingSince)) || Date.parse(data.failingSince) > now.getTime()) {
    throw badInput('failingSince', `${data.failingSince} is not a time before ${now.toISOString()}`);
  }
  return [{ type: 'WebhookEndpointDisabled', data: { endpointId: data.endpointId, reason: data.reason, failingSince: data.failingSince } }];
};

const enable = ({ data }: EnableWebhookEndpoint, state: WebhooksState): WebhookEvent[] => {
  const endpoint = existing(state, data.endpointId);
  return endpoint.disabled ? [{ type: 'WebhookEndpointEnabled', data: { endpointId: data.endpointId } }] : [];
};

export const decide = (command: WebhookCommand, state: WebhooksState): WebhookEvent[] => {
  switch (command.type) {
    case 'RegisterWebhookEndpoint':
      return register(command, state);
    case 'ChangeWebhookEndpoint':
      return change(command, state);
    case 'RemoveWebhookEndpoint':
      return remove(command, state);
    case 'DisableWebhookEndpoint':
      return disable(command, state);
    case 'EnableWebhookEndpoint':
      return enable(command, state);
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};

const updated = (state: WebhooksState, endpointId: string, update: (e: WebhookEndpoint) => WebhookEndpoint): WebhooksState => {
  const endpoint = state.endpoints.get(endpointId);
  if (!endpoint) return state;
  return { endpoints: new Map(state.endpoints).set(endpointId, update(endpoint)) };
};

export const evolve = (state: WebhooksState, event: WebhookEvent): WebhooksState => {
  switch (event.type) {
    case 'WebhookEndpointRegistered': {
      const { endpointId, url, events, secret, secretHint } = event.data;
      return { endpoints: new Map(state.endpoints).set(endpointId, { endpointId, url, events, secret, secretHint, disabled: null, version: 1 }) };
    }
    case 'WebhookEndpointChanged':
      return updated(state, event.data.endpointId, (e) => ({ ...e, url: event.data.url, events: event.data.events, version: e.version + 1 }));
    case 'WebhookEndpointRemoved': {
      const endpoints = new Map(state.endpoints);
      endpoints.delete(event.data.endpointId);
      return { endpoints };
    }
    case 'WebhookEndpointDisabled':
      return updated(state, event.data.endpointId, (e) => ({ ...e, disabled: { reason: event.data.reason, failingSince: event.data.failingSince } }));
    case 'WebhookEndpointEnabled':
      return updated(state, event.data.endpointId, (e) => ({ ...e, disabled: null, version: e.version + 1 }));
    default: {
      const never: never = event;
      return never;
    }
  }
};

export const webhookDecider = { decide, evolve, initialState };
