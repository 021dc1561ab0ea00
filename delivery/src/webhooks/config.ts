import type { EnvReader } from '#platform/config';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export type WebhookConfig = Readonly<{
  /** Messages per request (a JSON array), 1 to 100. */
  batchSize: number;
  /** Requests in flight at once in this process, across endpoints. */
  concurrency: number;
  /** A request unanswered after this long failed (`timeout`). */
  requestTimeoutMs: number;
  /** First retry wait of a failing endpoint; each failure in a row doubles it, with jitter. */
  retryBaseMs: number;
  /** Longest wait between two tries. */
  retryMaxMs: number;
  /**
   * After failing continuously this long, the endpoint is disabled (WebhookEndpointDisabled) and
   * gets nothing until an admin enables it. Until then every message is retried.
   */
  disableAfterMs: number;
  /** With several delivery processes, the holder of the `webhooks` lease dispatches. */
  leaseTtlMs: number;
  /** Fallback look at every endpoint's outbox, besides the wake-ups after each projection commit. */
  rescanMs: number;
  /** Accept http:// endpoints on this machine (development and tests); otherwise https only. */
  allowHttpLocalhost: boolean;
}>;

export const defaultWebhookConfig: WebhookConfig = {
  batchSize: 100,
  concurrency: 50,
  requestTimeoutMs: 10_000,
  retryBaseMs: 5_000,
  retryMaxMs: HOUR,
  disableAfterMs: 3 * DAY,
  leaseTtlMs: 10_000,
  rescanMs: 30_000,
  allowHttpLocalhost: false,
};

/**
 * The webhooks section: WEBHOOK_BATCH_SIZE, WEBHOOK_CONCURRENCY, WEBHOOK_TIMEOUT_MS, WEBHOOK_RETRY_BASE_MS,
 * WEBHOOK_RETRY_MAX_MS, WEBHOOK_DISABLE_AFTER_MS (at least 24 hours: every message is retried
 * that long), WEBHOOK_ALLOW_HTTP_LOCALHOST.
 */
export const readWebhookConfig = (r: EnvReader, base: WebhookConfig = defaultWebhookConfig): WebhookConfig => {
  const retryBaseMs = r.integer('WEBHOOK_RETRY_BASE_MS', base.retryBaseMs, 1);
  const retryMaxMs = r.integer('WEBHOOK_RETRY_MAX_MS', base.retryMaxMs, 1);
  if (retryMaxMs < retryBaseMs) r.problem(`WEBHOOK_RETRY_MAX_MS (${retryMaxMs}) must be at least WEBHOOK_RETRY_BASE_MS (${retryBaseMs})`);
  return {
    ...base,
    batchSize: r.integer('WEBHOOK_BATCH_SIZE', base.batchSize, 1, 100),
    concurrency: r.integer('WEBHOOK_CONCURRENCY', base.concurrency, 1, 10_000),
    requestTimeoutMs: r.integer('WEBHOOK_TIMEOUT_MS', base.requestTimeoutMs, 100, 120_000),
    retryBaseMs,
    retryMaxMs,
    disableAfterMs: r.integer('WEBHOOK_DISABLE_AFTER_MS', base.disableAfterMs, DAY),
    allowHttpLocalhost: r.bool('WEBHOOK_ALLOW_HTTP_LOCALHOST', base.allowHttpLocalhost),
  };
};

/** The wait before try number `failures + 1`: exponential, capped, with jitter over its upper half. */
export const backoffMs = (config: Pick<WebhookConfig, 'retryBaseMs' | 'retryMaxMs'>, failures: number, random: () => number = Math.random): number => {
  const ceiling = Math.min(config.retryMaxMs, config.retryBaseMs * 2 ** Math.min(Math.max(failures - 1, 0), 40));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
};
