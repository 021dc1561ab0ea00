import { describe, expect, it } from 'vitest';
import { EnvReader } from '#platform/config';
import { defaultWebhookConfig, readWebhookConfig } from './config';

describe('webhook configuration', () => {
  it('defaults to batches of 100, retries for 3 days, https only', () => {
    const r = new EnvReader({});
    expect(readWebhookConfig(r)).toEqual(defaultWebhookConfig);
    expect(defaultWebhookConfig).toMatchObject({ batchSize: 100, disableAfterMs: 259_200_000, allowHttpLocalhost: false });
    expect(r.problems).toEqual([]);
  });

  it('reads the environment and reports every problem, a disable time under 24 hours among them', () => {
    const ok = new EnvReader({ WEBHOOK_BATCH_SIZE: '20', WEBHOOK_DISABLE_AFTER_MS: '86400000', WEBHOOK_ALLOW_HTTP_LOCALHOST: 'true', WEBHOOK_CONCURRENCY: '8' });
    expect(readWebhookConfig(ok)).toMatchObject({ batchSize: 20, disableAfterMs: 86_400_000, allowHttpLocalhost: true, concurrency: 8 });
    const bad = new EnvReader({ WEBHOOK_BATCH_SIZE: '101', WEBHOOK_DISABLE_AFTER_MS: '60000', WEBHOOK_RETRY_BASE_MS: '10', WEBHOOK_RETRY_MAX_MS: '5' });
    readWebhookConfig(bad);
    expect(bad.problems).toEqual([
      expect.stringMatching(/WEBHOOK_RETRY_MAX_MS \(5\) must be at least WEBHOOK_RETRY_BASE_MS/),
      expect.stringMatching(/WEBHOOK_BATCH_SIZE must be an integer from 1 to 100/),
      expect.stringMatching(/WEBHOOK_DISABLE_AFTER_MS must be an integer >= 86400000/),
    ]);
  });
});
