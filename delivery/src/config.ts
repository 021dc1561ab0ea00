import type { EnvReader } from '#platform/config';
import { PLATFORM, type Vendor } from '#schema/integrations';
import { SHARDS } from '#schema/sharding';

/** How the router treats one provider: its quota, concurrency and circuit breaker. */
export type ProviderPolicy = Readonly<{
  /** Messages per second the provider accepts from us (its quota). */
  ratePerSecond: number;
  /** Requests in flight at once. */
  concurrency: number;
  /** A call slower than this counts as failed (and a hung provider is abandoned). */
  timeoutMs: number;
  /** Breaker: open when this share of calls fails within the rolling window... */
  errorThresholdPercentage: number;
  /** ...once at least this many calls were made in it. */
  volumeThreshold: number;
  /** Breaker: after this long open, let one probe through (half-open). */
  resetTimeoutMs: number;
  /** Messages per call (FCM sendEach 500, SendGrid 1000) and the latency to plan with: admission only. */
  maxBatch: number;
  expectedLatencyMs: number;
}>;

export type DeliveryConfig = Readonly<{
  partitions: number;
  /** Deliveries handed to providers and not yet answered, per worker. */
  maxInFlight: number;
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

const policy = (ratePerSecond: number, concurrency: number, maxBatch = 1): ProviderPolicy => ({
  ratePerSecond,
  concurrency,
  maxBatch,
  expectedLatencyMs: 50,
  timeoutMs: 10_000,
  errorThresholdPercentage: 50,
  volumeThreshold: 5,
  resetTimeoutMs: 2_000,
});

/**
 * Defaults for the provider sandbox. Real quotas differ per account (FCM: 600,000 a minute per
 * project by default); set them to what the accounts allow, since admission estimates use them.
 */
export const defaultDeliveryConfig: DeliveryConfig = {
  partitions: 8,
  maxInFlight: 4_000,
  maxPending: 20_000,
  flushMs: 25,
  retryBaseMs: 200,
  retryMaxMs: 30_000,
  pageSize: 1000,
  clusterRatePerSecond: 3_000,
  policies: {
    apns: policy(20_000, 400),
    'fcm-ios': policy(10_000, 400, 500),
    'fcm-primary': policy(10_000, 1000, 500),
    'fcm-secondary': policy(10_000, 1000, 500),
    sendgrid: policy(10_000, 20, 1000),
    smtp: policy(1_000, 20),
    twilio: policy(5_000, 300),
    sns: policy(5_000, 300),
  },
  vendorPolicies: {
    apns: policy(20_000, 400),
    fcm: policy(10_000, 1000, 500),
    sendgrid: policy(10_000, 20, 1000),
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
  Math.min(p.ratePerSecond, (p.concurrency * p.maxBatch * 1000) / Math.max(1, p.expectedLatencyMs));
