import type { EnvReader } from '#platform/config';
import { PLATFORM, type Vendor } from '#schema/integrations';
import { SHARDS } from '#schema/sharding';

/** How the router treats one provider: its quota, concurrency and circuit breaker. */
export type ProviderPolicy = Readonly<{
  /** Messages per second the provider accepts from us (its quota). */
  ratePerSecond: number;
  /**
   * Requests in flight at once (HTTP requests, HTTP/2 streams, SMTP connections), whether written
   * or waiting for a connection: the client's connection pool is made at least this large.
   */
  concurrency: number;
  /**
   * A call's deadline: max(minTimeoutMs, timeoutLatencyFactor × p99 of the integration's recent
   * successful calls), at most this; this itself until enough calls were seen, and for a half-open
   * probe. A call past its deadline is cancelled (its requests aborted) and counts as failed.
   */
  timeoutMs: number;
  minTimeoutMs: number;
  timeoutLatencyFactor: number;
  /**
   * Stall: not one answer from the integration for max(minStallMs, stallLatencyFactor × p50 of its
   * recent successful calls), while at least volumeThreshold of its messages have waited that
   * long, opens its breaker and cancels its calls, long before their deadlines when the provider
   * hangs (routing/stall.ts).
   */
  minStallMs: number;
  stallLatencyFactor: number;
  /** Breaker: open when this share of calls fails within the rolling window... */
  errorThresholdPercentage: number;
  /** ...once at least this many calls were made in it (and a stall needs this many messages waiting)... */
  volumeThreshold: number;
  /** ...which is this long (10 buckets): short, so an outage opens it within the window. */
  windowMs: number;
  /** Breaker: after this long open, let one probe through (half-open). */
  resetTimeoutMs: number;
  /**
   * Messages per call: the router cuts batches to this (FCM sendEach takes 500, SendGrid 1000; a
   * smaller call gives the breaker more calls to judge by). Also admission's planning figure.
   */
  maxBatch: number;
  /** Messages one request carries (SendGrid: the whole call; one elsewhere): admission's throughput. */
  messagesPerRequest: number;
  expectedLatencyMs: number;
}>;

export type DeliveryConfig = Readonly<{
  partitions: number;
  /** Deliveries handed to providers and not yet answered, per worker: at most this many. */
  maxInFlight: number;
  /**
   * Within that, how long a delivery should take from its dispatch round to its outcome: the
   * window of deliveries in flight is the rate times this (0: always `maxInFlight`).
   */
  windowMs: number;
  /** Deliveries taken from the bus and waiting in the deadline queue, per worker. */
  maxPending: number;
  /** Outcomes are appended at least this often, in batches. */
  flushMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** Planner: users read per page. */
  pageSize: number;
  /** Deliveries a second the delivery workers together sustain (admission plans with it; bench:fanout measures it). */
  clusterRatePerSecond: number;
  /** Policies of the platform defaults, by integration name (PROVIDER_<NAME>_* overrides them). */
  policies: Readonly<Record<string, ProviderPolicy>>;
  /** Every other integration's, by vendor; its configured quota replaces the rate. */
  vendorPolicies: Readonly<Record<Vendor, ProviderPolicy>>;
}>;

const policy = (ratePerSecond: number, concurrency: number, maxBatch = 1, messagesPerRequest = 1): ProviderPolicy => ({
  ratePerSecond,
  concurrency,
  maxBatch,
  messagesPerRequest,
  expectedLatencyMs: 50,
  timeoutMs: 10_000,
  minTimeoutMs: 1_000,
  timeoutLatencyFactor: 4,
  minStallMs: 750,
  stallLatencyFactor: 3,
  errorThresholdPercentage: 50,
  volumeThreshold: 3,
  windowMs: 2_000,
  resetTimeoutMs: 2_000,
});

/**
 * Defaults for the provider sandbox. Real quotas differ per account (FCM: 600,000 a minute per
 * project by default); set them to what the accounts allow, since admission estimates use them.
 */
export const defaultDeliveryConfig: DeliveryConfig = {
  partitions: 8,
  maxInFlight: 4_000,
  windowMs: 500,
  maxPending: 20_000,
  flushMs: 25,
  retryBaseMs: 200,
  retryMaxMs: 30_000,
  pageSize: 1000,
  clusterRatePerSecond: 3_000,
  // FCM: one request per message, 100 to a sendEach call; SendGrid: 100 personalizations a request.
  policies: {
    apns: policy(20_000, 400),
    'fcm-ios': policy(10_000, 400, 100),
    'fcm-primary': policy(10_000, 512, 100),
    'fcm-secondary': policy(10_000, 512, 100),
    sendgrid: policy(10_000, 20, 100, 100),
    smtp: policy(1_000, 20),
    twilio: policy(5_000, 300),
    sns: policy(5_000, 300),
  },
  vendorPolicies: {
    apns: policy(20_000, 400),
    fcm: policy(10_000, 512, 100),
    sendgrid: policy(10_000, 20, 100, 100),
    smtp: policy(1_000, 20),
    twilio: policy(5_000, 300),
    sns: policy(5_000, 300),
  },
};

/** The policy of one integration: a platform default's by name, else its vendor's, at its quota. */
export const policyFor = (
  config: Pick<DeliveryConfig, 'policies' | 'vendorPolicies'>,
  integration: Readonly<{ owner: string; name: string; vendor: Vendor; quotaPerSecond: number | null }>,
): ProviderPolicy => {
  const base = (integration.owner === PLATFORM ? config.policies[integration.name] : undefined) ?? config.vendorPolicies[integration.vendor];
  return integration.quotaPerSecond === null ? base : { ...base, ratePerSecond: integration.quotaPerSecond };
};

/**
 * The delivery section of the configuration, e.g. DELIVERY_MAX_IN_FLIGHT=2000,
 * PROVIDER_TWILIO_RATE=100; problems go to the reader, which reports them with every other section's.
 */
export const readDeliveryConfig = (r: EnvReader, base: DeliveryConfig = defaultDeliveryConfig): DeliveryConfig => {
  const policies: Record<string, ProviderPolicy> = {};
  for (const [name, p] of Object.entries(base.policies)) {
    const key = `PROVIDER_${name.toUpperCase().replace(/-/g, '_')}`;
    policies[name] = {
      ...p,
      ratePerSecond: r.integer(`${key}_RATE`, p.ratePerSecond, 1),
      concurrency: r.integer(`${key}_CONCURRENCY`, p.concurrency, 1),
      timeoutMs: r.integer(`${key}_TIMEOUT_MS`, p.timeoutMs, 1),
      minTimeoutMs: r.integer(`${key}_MIN_TIMEOUT_MS`, p.minTimeoutMs, 1),
      minStallMs: r.integer(`${key}_MIN_STALL_MS`, p.minStallMs, 1),
      resetTimeoutMs: r.integer(`${key}_RESET_MS`, p.resetTimeoutMs, 1),
      expectedLatencyMs: r.integer(`${key}_EXPECTED_LATENCY_MS`, p.expectedLatencyMs, 1),
    };
  }
  const partitions = r.integer('DELIVERY_PARTITIONS', base.partitions, 1, SHARDS);
  if (SHARDS % partitions !== 0) r.problem(`DELIVERY_PARTITIONS must divide ${SHARDS} (the users' shards): 1, 2, 4, ..., ${SHARDS}; got ${partitions}`);
  return {
    ...base,
    partitions,
    maxInFlight: r.integer('DELIVERY_MAX_IN_FLIGHT', base.maxInFlight, 1),
    windowMs: r.integer('DELIVERY_WINDOW_MS', base.windowMs, 0, 60_000),
    maxPending: r.integer('DELIVERY_MAX_PENDING', base.maxPending, 1),
    clusterRatePerSecond: r.integer('DELIVERY_CLUSTER_RATE', base.clusterRatePerSecond, 1),
    policies,
  };
};

/**
 * What one provider can take a second: its quota, unless its concurrency at the expected latency
 * allows less. The chain's capacity is the sum: the router spills over when a quota is used up.
 */
export const providerThroughput = (p: ProviderPolicy): number =>
  Math.min(p.ratePerSecond, (p.concurrency * p.messagesPerRequest * 1000) / Math.max(1, p.expectedLatencyMs));
