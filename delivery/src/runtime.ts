import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { JobBus } from '#platform/bus/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { streams } from '#schema/streams';
import type { DeliveryConfig } from './config';
import type { DeliveryMetrics } from './metrics';
import type { Vendor } from '#schema/integrations';
import type { ProviderClientOptions } from './providers/integration';
import { IntegrationRegistry, type BreakerState, type RegistryDeps } from './routing/registry';
import { ProviderRouter } from './routing/router';
import { Planner } from './planner';
import { DeliveryWorker } from './worker/index';

export type DeliveryRole = Readonly<{ registry: IntegrationRegistry; router: ProviderRouter; planner: Planner; worker: DeliveryWorker; stop: () => Promise<void> }>;

const BREAKER_GAUGE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** The delivery role: the planner (fan-out and completion) and one worker, over the given providers. */
export const startDelivery = async (deps: Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  bus: JobBus;
  cipher: PersonalDataCipher;
  clock: Clock;
  logger: Logger;
  config: DeliveryConfig;
  metrics?: DeliveryMetrics;
  clientOptions?: ProviderClientOptions;
  /** Where an integration's delivery receipts go (its status callback URL), if the service is reachable. */
  receiptsUrl?: (owner: string, name: string, vendor: Vendor) => string | undefined;
  /** Records that a provider refused an integration's credentials (the integration's event). */
  onCredentialsRejected?: (owner: string, name: string, fingerprint: string, code: string) => Promise<unknown>;
  clientOf?: RegistryDeps['clientOf'];
  readModelsCaughtUp: (position: number) => Promise<void>;
  /** Off in processes that only send (a second worker): one planner is enough, though more are safe. */
  plan?: boolean;
  dispatchRounds?: number;
}>): Promise<DeliveryRole> => {
  const registry = new IntegrationRegistry({
    eventStore: deps.eventStore,
    cipher: deps.cipher,
    config: deps.config,
    logger: deps.logger,
    ...(deps.clientOptions ? { clientOptions: deps.clientOptions } : {}),
    ...(deps.receiptsUrl ? { receiptsUrl: deps.receiptsUrl } : {}),
    ...(deps.clientOf ? { clientOf: deps.clientOf } : {}),
    onBuilt: (route) => deps.metrics?.breakerState.set({ integration: `${route.owner}/${route.name}` }, route.rejected ? BREAKER_GAUGE.open : BREAKER_GAUGE.closed),
    onBreaker: (route, state, reason) => {
      const key = `${route.owner}/${route.name}`;
      deps.metrics?.breakerState.set({ integration: key }, BREAKER_GAUGE[state]);
      deps.logger.warn({ owner: route.owner, integration: route.name, state, reason }, 'provider circuit changed');
      void deps.eventStore
        .appendToStream(streams.provider(`${route.owner}.${route.name}`), [{
          type: 'ProviderCircuitChanged',
          data: { provider: route.name, owner: route.owner, channel: route.channel, state, reason, ...(route.lastFailure ? { lastFailure: route.lastFailure.slice(0, 200) } : {}) },
          metadata: { tenantId: route.owner, actor: 'system', requestId: `breaker-${route.owner}.${route.name}`, at: deps.clock.now().toISOString() },
        }])
        .catch((e) => deps.logger.error({ err: e }, 'recording a circuit change failed'));
    },
  });
  const router = new ProviderRouter(registry, (route, code) => {
    deps.logger.warn({ owner: route.owner, integration: route.name, code }, 'provider refused the integration\'s credentials; failing over');
    void deps.onCredentialsRejected?.(route.owner, route.name, route.fingerprint, code)
      .catch((e) => deps.logger.error({ err: e }, 'recording a credential rejection failed'));
  });
  const planner = new Planner(deps);
  const worker = new DeliveryWorker({ ...deps, router, onShare: (fraction) => registry.setQuotaShare(fraction) });
  if (deps.plan !== false) await planner.start();
  await worker.start();
  return {
    registry,
    router,
    planner,
    worker,
    stop: async () => {
      await planner.stop();
      await worker.stop();
      await registry.close();
    },
  };
};
