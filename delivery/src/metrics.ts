import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type DeliveryMetrics = Readonly<{
  registry: Registry;
  deliveries: Counter<'status' | 'channel' | 'provider'>;
  attemptSeconds: Histogram<'provider'>;
  deadlineSlackSeconds: Histogram;
  queueDepth: Gauge;
  breakerState: Gauge<'provider'>;
}>;

/** The service's Prometheus metrics; one registry per process, served on /metrics. */
export const createMetrics = (): DeliveryMetrics => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'notify_' });
  return {
    registry,
    deliveries: new Counter({ name: 'notify_deliveries_total', help: 'Deliveries that reached a terminal state.', labelNames: ['status', 'channel', 'provider'], registers: [registry] }),
    attemptSeconds: new Histogram({ name: 'notify_delivery_attempt_seconds', help: 'Provider call latency.', labelNames: ['provider'], buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    deadlineSlackSeconds: new Histogram({ name: 'notify_delivery_deadline_slack_seconds', help: 'Time left before the deadline when a delivery ended (negative: late).', buckets: [-60, -1, 0, 30, 60, 120, 300, 600, 900, 1200, 1800], registers: [registry] }),
    queueDepth: new Gauge({ name: 'notify_delivery_queue_depth', help: 'Deliveries waiting in the deadline queue.', registers: [registry] }),
    breakerState: new Gauge({ name: 'notify_provider_breaker_state', help: 'Circuit breaker per provider: 0 closed, 1 half-open, 2 open.', labelNames: ['provider'], registers: [registry] }),
  };
};
