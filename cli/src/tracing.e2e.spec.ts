import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { inSpan } from '#platform/tracing';
import { startTracing, tracingWanted } from './tracing';

describe('tracing configuration', () => {
  it('is off unless an OTLP endpoint or an exporter is configured', () => {
    expect(tracingWanted({})).toBe(false);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(tracingWanted({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' })).toBe(true);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(tracingWanted({ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(false);
    expect(tracingWanted({ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' })).toBe(false);
  });

  describe('with an OTLP endpoint', () => {
    const received: string[] = [];
    const collector = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(`${req.url} ${body}`);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    afterAll(async () => {
      for (const k of ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'OTEL_EXPORTER_OTLP_PROTOCOL', 'OTEL_SERVICE_NAME']) delete process.env[k];
      await new Promise<void>((r) => collector.close(() => r()));
    });

    it('exports the service\'s spans over OTLP/HTTP to the configured endpoint', async () => {
      await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
      const port = (collector.address() as { port: number }).port;
      const env: NodeJS.ProcessEnv = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_SERVICE_NAME: 'notify-test' };
      Object.assign(process.env, env);
      const stop = await startTracing(process.env);
      expect(stop).not.toBeNull();
      await inSpan('planner.slice', { attributes: { 'notify.tenant': 'acme' } }, async () => undefined);
      await stop!();
      const sent = received.join('\n');
      expect(sent).toContain('/v1/traces');
      expect(sent).toContain('planner.slice');
      expect(sent).toContain('notify-test');
    });
  });
});
