import type { RecordedEvent } from '#schema/events';
import type { WebhookEvent } from '#schema/webhooks';
import { endpointKey, type WebhookEndpointDocument } from './document';

/**
 * The dispatcher's registry entry of one endpoint after an event of the tenant's webhook stream
 * (null: removed). Pure; an event at or before the document's position is already in it.
 */
export const evolveWebhookEndpoint = (doc: WebhookEndpointDocument | null, event: RecordedEvent<WebhookEvent>): WebhookEndpointDocument | null => {
  if (doc && event.position <= doc.position) return doc;
  const position = event.position;
  switch (event.type) {
    case 'WebhookEndpointRegistered': {
      const { endpointId, url, events, secret } = event.data;
      const tenantId = event.metadata.tenantId;
      return { id: endpointKey(tenantId, endpointId), tenantId, endpointId, url, events, secret, status: 'enabled', version: 1, queued: 0, position };
    }
    case 'WebhookEndpointChanged':
      return doc && { ...doc, url: event.data.url, events: event.data.events, version: doc.version + 1, position };
    case 'WebhookEndpointRemoved':
      return null;
    case 'WebhookEndpointDisabled':
      return doc && { ...doc, status: 'disabled', position };
    case 'WebhookEndpointEnabled':
      return doc && { ...doc, status: 'enabled', version: doc.version + 1, position };
    default: {
      const never: never = event;
      return never;
    }
  }
};
