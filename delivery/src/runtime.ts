import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { JobBus } from '#platform/bus/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { Clock } from '#platform/clock';
import type { Logger } from '#platform/logger';
import { streams } from '#schema/streams';
import type { DeliveryConfig } from './config';
import type { DeliveryMetrics } from './metrics';
import type { Provider } from './providers/port';
import { ProviderRouter, type BreakerState } from './router';
import { Planner } from './planner';
import { DeliveryWorker } from './worker/index';

export type DeliveryRole = Readonly<{ router: ProviderRouter; planner: Planner; worker: DeliveryWorker; stop: () => Promise<void> }>;

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
  providers: readonly Provider[];
  metrics?: DeliveryMetrics;
  readModelsCaughtUp: (position: number) => Promise<void>;
  /** Off in processes that only send (a second worker): one planner is enough, though more are safe. */
  plan?: boolean;
  dispatchRounds?: number;
}>): Promise<DeliveryRole> => {
  const router = new ProviderRouter(deps.providers, deps.config, (provider, state, reason) => {
    deps.metrics?.breakerState.set({ provider: provider.name }, BREAKER_GAUGE[state]);
    deps.logger.warn({ provider: provider.name, state, reason }, 'provider circuit changed');
    void deps.eventStore
      .appendToStream(streams.provider(provider.name), [
        { type: 'ProviderCircuitChanged', data: { provider: provider.name, channel: provider.channel, state, reason }, metadata: { tenantId: 'system', actor: 'system', requestId: `breaker-${provider.name}`, at: deps.clock.now().toISOString() } },
      ])
      .catch((e) => deps.logger.error({ err: e }, 'recording a circuit change failed'));
  });
  for (const p of deps.providers) deps.metrics?.breakerState.set({ provider: p.name }, 0);
  const planner = new Planner(deps);
  const worker = new DeliveryWorker({ ...deps, router });
  if (deps.plan !== false) await planner.start();
  await worker.start();
  return {
    router,
    planner,
    worker,
    stop: async () => {
      await planner.stop();
      await worker.stop();
      await router.close();
    },
  };
};
