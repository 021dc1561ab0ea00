import { EnvReader, readServiceConfig, type Config, type Env } from '#platform/config';
import { readDeliveryConfig, type DeliveryConfig } from '#delivery/config';
import { readWebhookConfig, type WebhookConfig } from '#delivery/webhooks/config';

export type ServiceConfig = Config & Readonly<{ delivery: DeliveryConfig; webhooks: WebhookConfig }>;

/**
 * The one configuration loader: every section read from the environment, every problem reported
 * at once in one ConfigError (the command line exits with code 2 and no stack trace).
 */
export const loadConfig = (env: Env, cwd: string = process.cwd()): ServiceConfig => {
  const reader = new EnvReader(env);
  const service = readServiceConfig(reader, cwd);
  const delivery = readDeliveryConfig(reader);
  const webhooks = readWebhookConfig(reader);
  reader.check();
  return { ...service, delivery, webhooks };
};

export { ConfigError } from '#platform/config';
