import { describe, expect, it } from 'vitest';
import type { Sealed } from '#schema/events';
import { MAX_WEBHOOK_ENDPOINTS, parseWebhookUrl, type WebhookCommand, type WebhookEvent } from '#schema/webhooks';
import { DeciderSpecification } from '../decider-spec';
import { newWebhookSecret, secretHintOf } from './commands';
import { webhookDecider } from './decider';

const now = new Date('2026-12-01T00:00:00Z');
const spec = DeciderSpecification.for(webhookDecider);
const cmd = (c: Omit<WebhookCommand, 'now'>): WebhookCommand => ({ ...c, now }) as WebhookCommand;
const secret = 'pd1.sealed' as Sealed;

const register = (endpointId = 'ep_1', url = 'https://hooks.example.com/a') =>
  cmd({ type: 'RegisterWebhookEndpoint', data: { endpointId, url, events: ['delivery.failed', 'notification.completed'], secret, secretHint: 'whsec_…abcd' } });
const registered = (endpointId = 'ep_1', url = 'https://hooks.example.com/a'): WebhookEvent => ({
  type: 'WebhookEndpointRegistered',
  // Canonical order of WEBHOOK_EVENT_TYPES, whatever order was given.
  data: { endpointId, url, events: ['notification.completed', 'delivery.failed'], secret, secretHint: 'whsec_…abcd' },
});
const disabled: WebhookEvent = { type: 'WebhookEndpointDisabled', data: { endpointId: 'ep_1', reason: 'continuous-failure', failingSince: '2026-11-28T00:00:00.000Z' } };
const enabled: WebhookEvent = { type: 'WebhookEndpointEnabled', data: { endpointId: 'ep_1' } };
const disable = (version: number, failingSince = '2026-11-28T00:00:00.000Z') =>
  cmd({ type: 'DisableWebhookEndpoint', data: { endpointId: 'ep_1', reason: 'continuous-failure', failingSince, version } });

describe('webhook decider', () => {
  it('registers an endpoint, its event types in canonical order', () => spec.given([]).when(register()).then([registered()]));
  it('refuses an unknown or missing event type', () => {
    spec.given([]).when(cmd({ type: 'RegisterWebhookEndpoint', data: { endpointId: 'ep_1', url: 'https://x.example', events: ['user.renamed' as never], secret, secretHint: 'h' } })).thenThrows('BAD_USER_INPUT', /events\[0\]/);
    spec.given([]).when(cmd({ type: 'RegisterWebhookEndpoint', data: { endpointId: 'ep_1', url: 'https://x.example', events: [], secret, secretHint: 'h' } })).thenThrows('BAD_USER_INPUT', /events/);
  });
  it(`refuses an endpoint beyond ${MAX_WEBHOOK_ENDPOINTS}`, () =>
    spec.given(Array.from({ length: MAX_WEBHOOK_ENDPOINTS }, (_, i) => registered(`ep_${i}`, `https://h.example/${i}`))).when(register('ep_x', 'https://h.example/x')).thenThrows('BAD_USER_INPUT', /limit is 10/));
  it('refuses the same URL twice, and the same id twice', () => {
    spec.given([registered()]).when(register('ep_2')).thenThrows('CONFLICT', /URL is already registered/);
    spec.given([registered()]).when(register('ep_1', 'https://other.example')).thenThrows('CONFLICT', /already exists/);
  });
  it('changes the URL or the events; the same values change nothing', () => {
    spec.given([registered()]).when(cmd({ type: 'ChangeWebhookEndpoint', data: { endpointId: 'ep_1', url: 'https://b.example/' } }))
      .then([{ type: 'WebhookEndpointChanged', data: { endpointId: 'ep_1', url: 'https://b.example/', events: ['notification.completed', 'delivery.failed'] } }]);
    spec.given([registered()]).when(cmd({ type: 'ChangeWebhookEndpoint', data: { endpointId: 'ep_1', events: ['user.shredded'] } }))
      .then([{ type: 'WebhookEndpointChanged', data: { endpointId: 'ep_1', url: 'https://hooks.example.com/a', events: ['user.shredded'] } }]);
    spec.given([registered()]).when(cmd({ type: 'ChangeWebhookEndpoint', data: { endpointId: 'ep_1', events: ['delivery.failed', 'notification.completed'] } })).thenNothingHappens();
  });
  it('changes, removes and enables no unknown endpoint', () => {
    spec.given([]).when(cmd({ type: 'ChangeWebhookEndpoint', data: { endpointId: 'ep_1', url: 'https://b.example/' } })).thenThrows('NOT_FOUND', /ep_1/);
    spec.given([]).when(cmd({ type: 'RemoveWebhookEndpoint', data: { endpointId: 'ep_1' } })).thenThrows('NOT_FOUND', /ep_1/);
    spec.given([registered(), { type: 'WebhookEndpointRemoved', data: { endpointId: 'ep_1' } }]).when(cmd({ type: 'EnableWebhookEndpoint', data: { endpointId: 'ep_1' } })).thenThrows('NOT_FOUND');
  });
  it('removes an endpoint, which frees its URL and its place', () => {
    spec.given([registered()]).when(cmd({ type: 'RemoveWebhookEndpoint', data: { endpointId: 'ep_1' } })).then([{ type: 'WebhookEndpointRemoved', data: { endpointId: 'ep_1' } }]);
    spec.given([registered(), { type: 'WebhookEndpointRemoved', data: { endpointId: 'ep_1' } }]).when(register('ep_2')).then([registered('ep_2')]);
  });
  it('disables an endpoint once, about its current version only', () => {
    spec.given([registered()]).when(disable(1)).then([disabled]);
    spec.given([registered(), disabled]).when(disable(1)).thenNothingHappens();
    // The URL changed since the failures began (version 2): the report is stale.
    spec.given([registered(), { type: 'WebhookEndpointChanged', data: { endpointId: 'ep_1', url: 'https://b.example/', events: ['delivery.failed'] } }]).when(disable(1)).thenNothingHappens();
    // Enabled again since (version 2): only a report about version 2 counts.
    spec.given([registered(), disabled, enabled]).when(disable(1)).thenNothingHappens();
    spec.given([registered(), disabled, enabled]).when(disable(2, '2026-11-30T00:00:00.000Z')).then([{ ...disabled, data: { ...disabled.data, failingSince: '2026-11-30T00:00:00.000Z' } } as WebhookEvent]);
    spec.given([]).when(disable(1)).thenNothingHappens();
  });
  it('refuses a failure streak that begins in the future', () => spec.given([registered()]).when(disable(1, '2027-01-01T00:00:00.000Z')).thenThrows('BAD_USER_INPUT', /failingSince/));
  it('enables a disabled endpoint; an enabled one stays as it is', () => {
    spec.given([registered(), disabled]).when(cmd({ type: 'EnableWebhookEndpoint', data: { endpointId: 'ep_1' } })).then([enabled]);
    spec.given([registered()]).when(cmd({ type: 'EnableWebhookEndpoint', data: { endpointId: 'ep_1' } })).thenNothingHappens();
  });
});

describe('webhook URLs and secrets', () => {
  it('accepts https, and plain http to this machine only when allowed', () => {
    expect(parseWebhookUrl('url', ' https://hooks.example.com/in?x=1 ')).toBe('https://hooks.example.com/in?x=1');
    expect(() => parseWebhookUrl('url', 'http://127.0.0.1:9000/in')).toThrow(/https/);
    expect(parseWebhookUrl('url', 'http://127.0.0.1:9000/in', { allowHttpLocalhost: true })).toBe('http://127.0.0.1:9000/in');
    expect(parseWebhookUrl('url', 'http://localhost/in', { allowHttpLocalhost: true })).toBe('http://localhost/in');
    expect(() => parseWebhookUrl('url', 'http://10.0.0.1/in', { allowHttpLocalhost: true })).toThrow(/https/);
    expect(() => parseWebhookUrl('url', 'ftp://hooks.example.com/')).toThrow(/https, not ftp/);
  });
  it('refuses credentials, fragments, garbage and URLs over 2048 characters', () => {
    expect(() => parseWebhookUrl('url', 'https://user:pw@hooks.example.com/')).toThrow(/credentials/);
    expect(() => parseWebhookUrl('url', 'https://hooks.example.com/#x')).toThrow(/fragment/);
    expect(() => parseWebhookUrl('url', 'not a url')).toThrow(/valid absolute URL/);
    expect(() => parseWebhookUrl('url', '')).toThrow(/give/);
    const long = `https://hooks.example.com/${'a'.repeat(2048)}`;
    expect(() => parseWebhookUrl('url', long)).toThrow(/limit is 2048/);
    expect(parseWebhookUrl('url', `https://hooks.example.com/${'a'.repeat(2000)}`)).toHaveLength(2026);
  });
  it('makes Standard Webhooks secrets of 32 random bytes, hinted by their last characters only', () => {
    const s = newWebhookSecret();
    expect(s).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(s.slice('whsec_'.length), 'base64')).toHaveLength(32);
    expect(newWebhookSecret()).not.toBe(s);
    expect(secretHintOf(s)).toBe(`whsec_…${s.slice(-5, -1)}`);
  });
});
