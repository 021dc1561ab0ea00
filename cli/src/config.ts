import { EnvReader, readServiceConfig, type Config, type Env } from '#platform/config';
import { readDeliveryConfig, type DeliveryConfig } from '#delivery/config';
import { readWebhookConfig, type WebhookConfig } from '#delivery/webhooks/config';
import type { IntegrationInput } from '#schema/integrations';
import { readProvidersFile } from './providers';

export type ServiceConfig = Config & Readonly<{
  delivery: DeliveryConfig;
  webhooks: WebhookConfig;
  /** PROVIDERS_FILE's integrations, validated: the platform defaults. */
  platformProviders: readonly IntegrationInput[];
}>;

/**
 * The one configuration loader: every section read from the environment, every problem reported
 * at once in one ConfigError (the command line exits with code 2 and no stack trace).
 */
export const loadConfig = (env: Env, cwd: string = process.cwd()): ServiceConfig => {
  const reader = new EnvReader(env);
  const service = readServiceConfig(reader, cwd);
  const delivery = readDeliveryConfig(reader);
  const webhooks = readWebhookConfig(reader);
  const platformProviders = service.providersFile ? readProvidersFile(service.providersFile, (m) => reader.problem(m)) : [];
  reader.check();
  return { ...service, delivery, webhooks, platformProviders };
};

export { ConfigError } from '#platform/config';
