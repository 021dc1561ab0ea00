import { Gauge, type Registry } from 'prom-client';
import type { ReadStore } from '#platform/read-store/port';
import type { Clock } from '#platform/clock';
import { guarded } from '#platform/metrics';
import { SCHEDULE, type ScheduleDocument } from './schedule';

/** Backlog counts up to this many due users per scrape (one sorted page of the schedule). */
export const BACKLOG_SCAN = 1000;

/**
 * Users whose consent ended (or whose erasure was decided) and whose data key still exists, read
 * from the expiry schedule at scrape time: how many (up to BACKLOG_SCAN) and how long the oldest
 * has waited. Both stay at 0 while expiry keeps up.
 */
export const expiryMetrics = (registry: Registry, deps: Readonly<{ readStore: ReadStore; clock: Clock }>): void => {
  let reading: Promise<void> | null = null;
  const once = () => (reading ??= read().finally(() => (reading = null)));
  const backlog = new Gauge({ name: 'notify_expiry_backlog', help: `Users due for shredding whose key still exists (counted up to ${BACKLOG_SCAN}).`, registers: [registry], collect: once });
  const oldest = new Gauge({ name: 'notify_expiry_oldest_unshredded_seconds', help: 'How long ago the consent of the longest-waiting unshredded user ended (0: none due).', registers: [registry], collect: once });
  const read = guarded(registry, 'notify_expiry', async () => {
    const now = deps.clock.now();
    const page = await deps.readStore.find<ScheduleDocument>(SCHEDULE, {}, { limit: BACKLOG_SCAN, sort: { field: 'dueAt', direction: 'asc' } });
    const due = page.items.filter((d) => Date.parse(d.dueAt) <= now.getTime());
    backlog.set(due.length);
    oldest.set(due[0] ? (now.getTime() - Date.parse(due[0].dueAt)) / 1000 : 0);
  });
};
