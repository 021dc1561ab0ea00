import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventStore } from './event-store/port';
import type { ReadStore } from './read-store/port';
import type { JobBus } from './bus/port';
import type { Clock } from './clock';

/** One registry per process, served on the ops port's /metrics; node's own metrics included. */
export const createRegistry = (): Registry => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'notify_' });
  return registry;
};

const collectErrors = (registry: Registry): Counter<'collector'> =>
  (registry.getSingleMetric('notify_metrics_collect_errors_total') as Counter<'collector'> | undefined) ??
  new Counter({ name: 'notify_metrics_collect_errors_total', help: 'Scrapes on which a metric could not be read (its store did not answer).', labelNames: ['collector'], registers: [registry] });

/**
 * Runs a scrape-time reading; a store that does not answer costs that reading (its gauges keep
 * their last values), counted, never the whole scrape.
 */
export const guarded = (registry: Registry, collector: string, read: () => Promise<void>): (() => Promise<void>) => {
  const errors = collectErrors(registry);
  return async () => {
    try {
      await read();
    } catch {
      errors.inc({ collector });
    }
  };
};

/** A consumer of the log that stores its position as a checkpoint (a read model, the planner). */
export type LogFollower = Readonly<{
  label: string;
  checkpoint: string;
  /**
   * The event types it consumes, when its checkpoint moves only on those (the planner's): it is
   * behind only while one of them waits, however far the head has moved past other events.
   */
  types?: readonly string[];
}>;

/**
 * How far checkpointed consumers of the log are behind its head, read at scrape time: in positions,
 * and in seconds (the age of the oldest event not yet consumed; 0 when caught up).
 */
export const logLagMetrics = (
  registry: Registry,
  deps: Readonly<{ eventStore: EventStore; readStore: ReadStore; clock: Clock }>,
  metric: Readonly<{ name: string; label: string; what: string }>,
  followers: readonly LogFollower[],
): void => {
  let reading: Promise<void> | null = null;
  // Both gauges are read in one pass per scrape.
  const once = () => (reading ??= read().finally(() => (reading = null)));
  const positions = new Gauge({ name: `${metric.name}_lag_positions`, help: `Log positions between the head and the ${metric.what}'s checkpoint.`, labelNames: [metric.label], registers: [registry], collect: once });
  const seconds = new Gauge({ name: `${metric.name}_lag_seconds`, help: `Age of the oldest event the ${metric.what} has not consumed (0: caught up).`, labelNames: [metric.label], registers: [registry], collect: once });
  const read = guarded(registry, metric.name, async () => {
    const head = await deps.eventStore.headPosition();
    const now = deps.clock.now().getTime();
    await Promise.all(
      followers.map(async (f) => {
        const at = (await deps.readStore.checkpoint(f.checkpoint)) ?? 0;
        const [next] = head > at ? await deps.eventStore.readAll({ after: at, maxCount: 1, ...(f.types ? { types: f.types } : {}) }) : [];
        positions.set({ [metric.label]: f.label }, next ? head - at : 0);
        seconds.set({ [metric.label]: f.label }, next ? Math.max(0, (now - Date.parse(next.metadata.at)) / 1000) : 0);
      }),
    );
  });
};

/** Messages published to a partition and not yet committed by the consumer group, per partition. */
export const busLagMetrics = (registry: Registry, bus: JobBus, consumers: readonly Readonly<{ topic: string; group: string }>[]): void => {
  const read = guarded(registry, 'notify_bus_consumer_lag', async () => {
    for (const { topic, group } of consumers) {
      for (const p of await bus.lag(topic, group)) lag.set({ topic, group, partition: String(p.partition) }, p.lag);
    }
  });
  const lag = new Gauge({ name: 'notify_bus_consumer_lag', help: 'Messages on a bus partition the consumer group has not committed.', labelNames: ['topic', 'group', 'partition'], registers: [registry], collect: read });
};
