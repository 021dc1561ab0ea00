import { randomUUID } from 'node:crypto';
import { streams } from '#schema/streams';
import { notFound } from '#schema/errors';
import { parseDeviceAddress } from '#schema/values';
import type { EventStore } from '#platform/event-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import { load } from '#command/handler';
import { integrationDecider } from '#command/integration/decider';
import { openIntegrationSecret } from '#command/integration/commands';
import { createProvider, toProviderIntegration, type ProviderClientOptions } from '../providers/integration';
import { ProviderUnavailableError } from '../providers/outcomes';
import type { SendOutcome } from '../providers/port';

export type TestVerdict = Readonly<{ outcome: string; reason: string | null; credentialsRejected: boolean; latencyMs: number }>;

/**
 * Sends one message through one integration, outside every chain, breaker and quota, and answers
 * with the provider's verdict: how an admin checks new credentials. Nothing is recorded.
 */
export const testIntegration = async (
  deps: Readonly<{ eventStore: EventStore; cipher: PersonalDataCipher; clientOptions?: ProviderClientOptions }>,
  owner: string,
  name: string,
  address: string,
): Promise<TestVerdict> => {
  const { state } = await load(deps.eventStore, streams.integrations(owner), integrationDecider);
  const integration = state.integrations.get(name);
  if (!integration) throw notFound(`provider integration ${name}`);
  const to = parseDeviceAddress('address', integration.channel, address);
  const secret = await openIntegrationSecret(deps.cipher, owner, integration.credentials);
  if (!secret) throw notFound(`the credentials of provider integration ${name}`);
  const provider = createProvider(toProviderIntegration(owner, integration, secret, {}), { timeoutMs: 10_000, maxSockets: 1, ...deps.clientOptions });
  const started = performance.now();
  let outcome: SendOutcome | undefined;
  try {
    [outcome] = await provider.send([{ deliveryId: `test-${randomUUID()}`, address: to, text: 'A test message from notify.', expiresAt: Date.now() + 5 * 60_000 }]);
  } catch (e) {
    outcome = e instanceof ProviderUnavailableError ? e.outcomes[0] : { deliveryId: 'test', outcome: 'transient', reason: e instanceof Error ? e.message : String(e) };
  } finally {
    // node-apn's close never settles after a failed connection: do not wait for it forever.
    await Promise.race([provider.close().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000).unref())]);
  }
  const latencyMs = Math.round(performance.now() - started);
  if (!outcome) return { outcome: 'transient', reason: 'no outcome from the provider', credentialsRejected: false, latencyMs };
  return {
    outcome: outcome.outcome,
    reason: outcome.outcome === 'accepted' ? null : outcome.reason,
    credentialsRejected: outcome.outcome === 'transient' && outcome.credentialsRejected === true,
    latencyMs,
  };
};
