import type { IntegrationEvent, ProviderEvent, RecordedEvent } from '#schema/events';
import { eventTypes, isOneOf, readModel, unreachable, type ReadModel } from '../read-model';
import { integrationDocId, integrationsCollection, type IntegrationDocument } from './document';

export const integrationEvents = eventTypes<IntegrationEvent['type'] | ProviderEvent['type']>({
  ProviderConfigured: true,
  ProviderRemoved: true,
  ProviderCredentialsRejected: true,
  ProviderCircuitChanged: true,
});

export const evolve = (doc: IntegrationDocument | null, event: RecordedEvent): IntegrationDocument | null => {
  if (!isOneOf(integrationEvents, event)) return doc;
  const { at } = event.metadata;
  switch (event.type) {
    case 'ProviderConfigured': {
      const d = event.data;
      return {
        id: integrationDocId(d.owner, d.name),
        owner: d.owner,
        name: d.name,
        vendor: d.vendor,
        channel: d.channel,
        priority: d.priority,
        settings: d.settings,
        quotaPerSecond: d.quotaPerSecond,
        endpoint: d.endpoint?.url ?? null,
        customCa: d.ca !== null,
        fingerprint: d.fingerprint,
        hint: d.hint,
        configuredAt: at,
        // A new configuration starts with a fresh breaker in every worker.
        breaker: null,
        lastError: null,
        credentialsRejected: null,
      };
    }
    case 'ProviderRemoved':
      return null;
    case 'ProviderCredentialsRejected':
      if (!doc || doc.fingerprint !== event.data.fingerprint) return doc;
      return { ...doc, credentialsRejected: event.data.code, lastError: { code: event.data.code, at } };
    case 'ProviderCircuitChanged': {
      if (!doc) return doc;
      const { state, reason, lastFailure } = event.data;
      return { ...doc, breaker: { state, reason, at }, ...(state === 'open' && lastFailure ? { lastError: { code: lastFailure, at } } : {}) };
    }
    default:
      return unreachable(event);
  }
};

export const integrationsReadModel: ReadModel<IntegrationDocument> = {
  name: 'integrations',
  collection: integrationsCollection,
  handles: integrationEvents,
  documentIds: (event) => {
    if (!isOneOf(integrationEvents, event)) return [];
    // Breaker changes recorded before integrations had owners name no integration document.
    if (event.type === 'ProviderCircuitChanged') return event.data.owner ? [integrationDocId(event.data.owner, event.data.provider)] : [];
    return [integrationDocId(event.data.owner, event.data.name)];
  },
  evolve,
};

export const integrations = readModel(integrationsReadModel);
