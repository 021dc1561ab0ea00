import { PLATFORM } from '#schema/integrations';
import type { IntegrationsState } from '#command/integration/decider';
import { policyFor, providerThroughput, type DeliveryConfig } from '../config';
import type { Channel } from '../providers/port';

/**
 * What a tenant's chain for a channel can take a second: the sum over its integrations and the
 * platform defaults (the router spills over when one's quota is used up), rejected credentials
 * excluded. Computed from the integrations' events alone, so the API role plans without clients.
 */
export const chainCapacity = (
  config: Pick<DeliveryConfig, 'policies' | 'vendorPolicies'>,
  own: IntegrationsState,
  platform: IntegrationsState,
  channel: Channel,
): number => {
  let total = 0;
  for (const [owner, state] of [['', own], [PLATFORM, platform]] as const) {
    for (const i of state.integrations.values()) {
      if (i.channel !== channel || i.credentialsRejected !== null) continue;
      total += providerThroughput(policyFor(config, { ...i, owner: owner || i.owner }));
    }
  }
  return total;
};
