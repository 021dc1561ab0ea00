import type { Registry } from 'prom-client';
import type { Role } from '#platform/config';
import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { KeyVault } from '#platform/key-vault/port';
import type { JobBus } from '#platform/bus/port';
import type { Clock } from '#platform/clock';
import type { ReadinessCheck } from '#platform/ops/readiness';
import { busLagMetrics, logLagMetrics } from '#platform/metrics';
import { allReadModels, checkpointName } from '#projections/index';
import { DELIVERY_GROUP, DELIVERY_TOPIC } from '#delivery/ids';
import { expiryMetrics } from '#expiry/metrics';

type Stores = Readonly<{ eventStore: EventStore; readStore: ReadStore; vault: KeyVault; bus: JobBus }>;

/**
 * What a process needs to answer before it is ready, by its roles: every role reads the log and
 * the read store; api and delivery open data keys (the vault); delivery takes jobs from the bus.
 */
export const readinessChecks = (roles: readonly Role[], stores: Stores): ReadinessCheck[] => {
  const checks: ReadinessCheck[] = [
    { name: 'event-store', check: () => stores.eventStore.headPosition() },
    { name: 'read-store', check: () => stores.readStore.checkpoint('planner') },
  ];
  if (roles.includes('api') || roles.includes('delivery')) checks.push({ name: 'key-vault', check: () => stores.vault.get('ops:readiness-probe') });
  if (roles.includes('delivery')) checks.push({ name: 'bus', check: () => stores.bus.partitions(DELIVERY_TOPIC) });
  return checks;
};

/**
 * The metrics read at scrape time, each in the role that owns what it measures (so a series has
 * one source in a scaled-out deployment): projection lag where projections run, the planner's
 * lag and the bus consumers' lag where delivery runs, the expiry backlog where expiry runs.
 */
export const registerRoleMetrics = (registry: Registry, roles: readonly Role[], stores: Stores, clock: Clock, plans: boolean): void => {
  const deps = { eventStore: stores.eventStore, readStore: stores.readStore, clock };
  if (roles.includes('projections')) {
    logLagMetrics(registry, deps, { name: 'notify_projection', label: 'read_model', what: 'read model' }, allReadModels.map((m) => ({ label: m.name, checkpoint: checkpointName(m) })));
  }
  if (roles.includes('delivery')) {
    if (plans) logLagMetrics(registry, deps, { name: 'notify_planner', label: 'planner', what: 'planner' }, [{ label: 'slices', checkpoint: 'planner', types: ['NotificationRequested'] }]);
    busLagMetrics(registry, stores.bus, [{ topic: DELIVERY_TOPIC, group: DELIVERY_GROUP }]);
  }
  if (roles.includes('expiry')) expiryMetrics(registry, { readStore: stores.readStore, clock });
};
