import { describe, expect, it } from 'vitest';
import type { RecordedEvent, Sealed } from '#schema/events';
import type { WebhookEvent } from '#schema/webhooks';
import { evolveWebhookEndpoint } from './evolve';
import { outboxDocId, outboxOrder } from './document';

let position = 0;
const recorded = (type: WebhookEvent['type'], data: object): RecordedEvent<WebhookEvent> =>
  ({ type, data, streamName: 'webhooks-acme', revision: 0, position: ++position, metadata: { tenantId: 'acme', actor: 'k', requestId: 'r', at: '2026-12-01T00:00:00.000Z' } }) as RecordedEvent<WebhookEvent>;

describe("the dispatcher's endpoint registry", () => {
  it('follows an endpoint through its life, bumping its version on every change and enable', () => {
    const registered = recorded('WebhookEndpointRegistered', { endpointId: 'ep_1', url: 'https://a.example/', events: ['delivery.failed'], secret: 'pd1.x' as Sealed, secretHint: 'h' });
    let doc = evolveWebhookEndpoint(null, registered);
    expect(doc).toEqual({ id: 'acme.ep_1', tenantId: 'acme', endpointId: 'ep_1', url: 'https://a.example/', events: ['delivery.failed'], secret: 'pd1.x', status: 'enabled', version: 1, queued: 0, position: registered.position });
    doc = evolveWebhookEndpoint({ ...doc!, queued: 7 }, recorded('WebhookEndpointChanged', { endpointId: 'ep_1', url: 'https://b.example/', events: ['user.shredded'] }));
    expect(doc).toMatchObject({ url: 'https://b.example/', events: ['user.shredded'], version: 2, queued: 7, status: 'enabled' });
    doc = evolveWebhookEndpoint(doc, recorded('WebhookEndpointDisabled', { endpointId: 'ep_1', reason: 'continuous-failure', failingSince: '2026-11-28T00:00:00.000Z' }));
    expect(doc).toMatchObject({ status: 'disabled', version: 2 });
    const enabled = recorded('WebhookEndpointEnabled', { endpointId: 'ep_1' });
    doc = evolveWebhookEndpoint(doc, enabled);
    expect(doc).toMatchObject({ status: 'enabled', version: 3 });
    // Applied already (a batch redone): unchanged.
    expect(evolveWebhookEndpoint(doc, enabled)).toBe(doc);
    expect(evolveWebhookEndpoint(doc, recorded('WebhookEndpointRemoved', { endpointId: 'ep_1' }))).toBeNull();
    expect(evolveWebhookEndpoint(null, recorded('WebhookEndpointEnabled', { endpointId: 'ep_9' }))).toBeNull();
  });

  it('orders outbox entries as the log does, across digit counts', () => {
    expect(outboxOrder(9, 10) < outboxOrder(10, 0)).toBe(true);
    expect(outboxOrder(10, 2) < outboxOrder(10, 10)).toBe(true);
    expect(outboxDocId('acme.ep_1', 12, 3)).toBe('acme.ep_1:0000000000000012.000003');
  });
});
