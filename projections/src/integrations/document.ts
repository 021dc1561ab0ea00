import type { DeviceKind } from '#schema/events';
import type { IntegrationSettings, Vendor } from '#schema/integrations';
import type { CollectionSpec } from '#platform/read-store/port';

/**
 * A provider integration as an admin may see it: its settings, a fingerprint and the last
 * characters of its credentials, never the credentials (they stay sealed in the log), and its
 * breaker as the delivery workers last reported it.
 */
export type IntegrationDocument = Readonly<{
  /** `<owner>:<name>`. */
  id: string;
  /** The tenant, or `platform` for the defaults. */
  owner: string;
  name: string;
  vendor: Vendor;
  channel: DeviceKind;
  priority: number;
  settings: IntegrationSettings;
  quotaPerSecond: number | null;
  endpoint: string | null;
  customCa: boolean;
  fingerprint: string;
  hint: string;
  configuredAt: string;
  breaker: Readonly<{ state: 'closed' | 'open' | 'half-open'; reason: string; at: string }> | null;
  /** The provider's last refusal or failure, as a code. */
  lastError: Readonly<{ code: string; at: string }> | null;
  /** Set when the provider refused the credentials: skipped until configured again. */
  credentialsRejected: string | null;
}>;

export const INTEGRATIONS = 'integrations';

export const integrationsCollection: CollectionSpec = { name: INTEGRATIONS, indexes: [['owner']] };

export const integrationDocId = (owner: string, name: string): string => `${owner}:${name}`;
