import type { ReadStore } from '#platform/read-store/port';
import { INTEGRATIONS, integrationDocId, type IntegrationDocument } from './document';
import { MAX_INTEGRATIONS } from '#schema/integrations';

/** An owner's integrations, by channel then priority then name. */
export const listIntegrations = async (store: ReadStore, owner: string): Promise<IntegrationDocument[]> => {
  const page = await store.find<IntegrationDocument>(INTEGRATIONS, { owner }, { limit: MAX_INTEGRATIONS });
  return [...page.items].sort((a, b) => a.channel.localeCompare(b.channel) || a.priority - b.priority || a.name.localeCompare(b.name));
};

export const getIntegration = (store: ReadStore, owner: string, name: string): Promise<IntegrationDocument | null> =>
  store.get<IntegrationDocument>(INTEGRATIONS, integrationDocId(owner, name));
