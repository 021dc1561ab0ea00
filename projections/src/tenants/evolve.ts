import type { RecordedEvent, TenantEvent } from '#schema/events';
import { DEFAULT_HISTORY_DAYS } from '#schema/values';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { tenantsCollection, type TenantDocument } from './document';

export const tenantEvents = eventTypes<TenantEvent['type']>({
  TenantRegistered: true,
  DeliveryDeadlineChanged: true,
  DeliveryHistoryChanged: true,
  ApiKeyIssued: true,
  ApiKeyRevoked: true,
});

export const evolve = (doc: TenantDocument | null, event: RecordedEvent): TenantDocument | null => {
  if (!isOneOf(tenantEvents, event)) return doc;
  const { at } = event.metadata;
  if (event.type === 'TenantRegistered') {
    const { tenantId, name, deliveryDeadlineMinutes } = event.data;
    return { id: tenantId, tenantId, name, deliveryDeadlineMinutes, deliveryHistoryDays: DEFAULT_HISTORY_DAYS, registeredAt: at, keys: [] };
  }
  if (!doc) return null;
  switch (event.type) {
    case 'DeliveryDeadlineChanged':
      return { ...doc, deliveryDeadlineMinutes: event.data.deliveryDeadlineMinutes };
    case 'DeliveryHistoryChanged':
      return { ...doc, deliveryHistoryDays: event.data.deliveryHistoryDays };
    case 'ApiKeyIssued': {
      const { keyId, name, scopes, issuedAt } = event.data;
      if (doc.keys.some((k) => k.keyId === keyId)) return doc;
      return { ...doc, keys: [...doc.keys, { keyId, name, scopes: [...scopes], issuedAt, revoked: false, revokedAt: null }] };
    }
    case 'ApiKeyRevoked': {
      const key = doc.keys.find((k) => k.keyId === event.data.keyId);
      if (!key || key.revoked) return doc;
      return { ...doc, keys: doc.keys.map((k) => (k === key ? { ...k, revoked: true, revokedAt: at } : k)) };
    }
    default:
      return unreachable(event);
  }
};

export const tenantsReadModel: ReadModel<TenantDocument> = {
  name: 'tenants',
  collection: tenantsCollection,
  handles: tenantEvents,
  documentIds: (event) => (isOneOf(tenantEvents, event) ? [event.data.tenantId] : []),
  evolve,
};

export const tenants = readModel(tenantsReadModel);
