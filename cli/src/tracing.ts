import type { Env } from '#platform/config';

/**
 * Tracing is off unless the standard OpenTelemetry variables ask for it: an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or an exporter
 * (OTEL_TRACES_EXPORTER other than `none`); OTEL_SDK_DISABLED=true turns it off.
 */
export const tracingWanted = (env: Env): boolean => {
  if ((env['OTEL_SDK_DISABLED'] ?? '').toLowerCase() === 'true') return false;
  const exporter = (env['OTEL_TRACES_EXPORTER'] ?? '').trim().toLowerCase();
  if (exporter === 'none') return false;
  return exporter !== '' || Boolean(env['OTEL_EXPORTER_OTLP_ENDPOINT'] || env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']);
};

/**
 * Starts the OpenTelemetry SDK for traces only, configured by the OTEL_* variables (exporter,
 * endpoint, headers, sampler, service name: `notify` unless OTEL_SERVICE_NAME); metrics stay on
 * Prometheus and logs on pino. Returns the shutdown that flushes what is buffered, or null when off.
 */
export const startTracing = async (env: NodeJS.ProcessEnv = process.env): Promise<(() => Promise<void>) | null> => {
  if (!tracingWanted(env)) return null;
  env['OTEL_METRICS_EXPORTER'] ??= 'none';
  env['OTEL_LOGS_EXPORTER'] ??= 'none';
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({ serviceName: env['OTEL_SERVICE_NAME'] ?? 'notify', instrumentations: [] });
  sdk.start();
  return () => sdk.shutdown();
};
