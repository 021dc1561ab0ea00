import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { createRegistry } from '#platform/metrics';

/**
 * Delivery's metrics. Labels stay bounded: tenant, channel, outcome and integration
 * (`owner/name`, configured by tenants and the operator), never a user, device or notification.
 */
export type DeliveryMetrics = Readonly<{
  registry: Registry;
  deliveries: Counter<'outcome' | 'channel' | 'integration' | 'tenant'>;
  expired: Counter<'channel' | 'tenant'>;
  attemptSeconds: Histogram<'integration'>;
  /** Time left before the deadline when a provider accepted a delivery. */
  deadlineSlackSeconds: Histogram<'channel'>;
  queueDepth: Gauge;
  breakerState: Gauge<'integration'>;
  notificationsSliced: Counter<'tenant'>;
  deliveriesPlanned: Counter<'tenant' | 'channel'>;
}>;

export const createMetrics = (registry: Registry = createRegistry()): DeliveryMetrics => ({
  registry,
  deliveries: new Counter({ name: 'notify_deliveries_total', help: 'Deliveries that reached a terminal state, by outcome (succeeded, failed, expired).', labelNames: ['outcome', 'channel', 'integration', 'tenant'], registers: [registry] }),
  expired: new Counter({ name: 'notify_deliveries_expired_total', help: 'Deliveries that ended expired: their deadline passed before a provider took them.', labelNames: ['channel', 'tenant'], registers: [registry] }),
  attemptSeconds: new Histogram({ name: 'notify_delivery_attempt_seconds', help: 'Provider call latency.', labelNames: ['integration'], buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
  deadlineSlackSeconds: new Histogram({ name: 'notify_delivery_deadline_slack_seconds', help: 'Time left before the deadline when a provider accepted a delivery.', labelNames: ['channel'], buckets: [10, 30, 60, 120, 300, 600, 900, 1200, 1800], registers: [registry] }),
  queueDepth: new Gauge({ name: 'notify_delivery_queue_depth', help: 'Deliveries waiting in this worker\'s deadline queue.', registers: [registry] }),
  breakerState: new Gauge({ name: 'notify_provider_breaker_state', help: 'Circuit breaker per integration (owner/name): 0 closed, 1 half-open, 2 open.', labelNames: ['integration'], registers: [registry] }),
  notificationsSliced: new Counter({ name: 'notify_planner_notifications_sliced_total', help: 'Notifications the planner cut into per-partition slices (published to the bus).', labelNames: ['tenant'], registers: [registry] }),
  deliveriesPlanned: new Counter({ name: 'notify_planner_deliveries_planned_total', help: 'Deliveries planned from slices (recipients paged from the read store).', labelNames: ['tenant', 'channel'], registers: [registry] }),
});
