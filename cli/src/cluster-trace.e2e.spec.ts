import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { createDatabase } from './testing/postgres';
import { buildService, startServiceProcess, type ServiceProcess } from './testing/process';
import { until } from './testing/until';

/**
 * The trace of a send across the cluster's processes: api, projections and delivery on
 * PostgreSQL and Kafka export their spans over OTLP/HTTP to a collector in this test; one trace
 * holds the mutation (api process), the planner and the bus publish, then the worker's planning
 * and the provider calls (delivery process), joined by the event's metadata and the Kafka headers.
 */
const { POSTGRES_URL, KAFKA_BROKERS } = process.env;
const ready = Boolean(POSTGRES_URL && KAFKA_BROKERS);
if (!ready) console.warn('cluster trace e2e skipped: POSTGRES_URL and KAFKA_BROKERS are not both set (npm run servers:up starts the servers and prints them)');

type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; service: string };

describe.skipIf(!ready)('one trace across the cluster\'s processes', () => {
  const run = `trace${randomBytes(4).toString('hex')}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-trace-'));
  const procs: ServiceProcess[] = [];
  const spans: OtlpSpan[] = [];
  let sandbox: Sandbox;
  let database: Awaited<ReturnType<typeof createDatabase>> | undefined;
  let collector: http.Server;
  let api: string;

  beforeAll(async () => {
    buildService();
    collector = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        try {
          const parsed = JSON.parse(body) as { resourceSpans?: { resource?: { attributes?: { key: string; value: { stringValue?: string } }[] }; scopeSpans?: { spans?: OtlpSpan[] }[] }[] };
          for (const rs of parsed.resourceSpans ?? []) {
            const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
            for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) spans.push({ traceId: s.traceId, spanId: s.spanId, ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}), name: s.name, service });
          }
        } catch {
          // Not JSON: not ours to read.
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    const port = (collector.address() as { port: number }).port;
    database = await createDatabase(POSTGRES_URL!, run);
    sandbox = await startSandbox({ faults: { latencyMs: 5 }, recording: { logLimit: 0 } });
    fs.writeFileSync(path.join(dir, 'sandbox.json'), JSON.stringify(sandbox.describe()));
    const env = {
      MASTER_KEY: randomBytes(32).toString('base64'), SANDBOX_FILE: path.join(dir, 'sandbox.json'),
      EVENT_STORE: 'postgres', READ_STORE: 'postgres', POSTGRES_URL: database.url,
      BUS: 'kafka', KAFKA_BROKERS: KAFKA_BROKERS!, KAFKA_PREFIX: run, LOG_LEVEL: 'error',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces`, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', OTEL_BSP_SCHEDULE_DELAY: '200',
    };
    const start = async (name: string, roles: string, extra: Record<string, string> = {}) => {
      const p = await startServiceProcess({ ...env, OTEL_SERVICE_NAME: `notify-${name}`, ROLES: roles, DATA_DIR: path.join(dir, name), ...extra });
      procs.push(p);
      return p;
    };
    api = (await start('api', 'api', { WRITE_OPERATOR_KEY_FILE: 'true' })).url;
    await Promise.all([start('projections', 'projections'), start('delivery', 'delivery')]);
  }, 180_000);

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGKILL');
    await sandbox?.close();
    collector?.close();
    await database?.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  it('the mutation in the api process, the planner, the Kafka message and the provider calls in the delivery process share one trace', async () => {
    const gql = async (key: string, query: string, variables?: object) => {
      const res = await fetch(api, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query, variables }) });
      const body = (await res.json()) as { data?: any; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };
    const operator = fs.readFileSync(path.join(dir, 'api', 'operator.key'), 'utf8').trim();
    const admin = (await gql(operator, `mutation { registerTenant(input: { tenantId: "traced", name: "Traced", deliveryDeadlineMinutes: 30 }) { adminKey { token } } }`)).registerTenant.adminKey.token as string;
    await gql(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'u1', name: 'Traced', consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: '+821055550009' }] },
    });
    // The user must be in the read models before the send is planned.
    await until(async () => (await gql(admin, '{ user(userId: "u1") { userId } }')).user?.userId === 'u1', 30_000, 'the user in the read models');
    const traceId = randomBytes(16).toString('hex');
    const res = await fetch(api, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
      body: JSON.stringify({ query: 'mutation { sendNotification(input: { userIds: ["u1"], text: "traced across processes" }) { notification { notificationId } } }' }),
    });
    expect(res.status).toBe(200);
    const names = () => new Set(spans.filter((s) => s.traceId === traceId).map((s) => `${s.service}:${s.name}`));
    await until(() => names().has('notify-delivery:provider.send'), 60_000, 'the provider call\'s span');
    expect([...names()]).toEqual(expect.arrayContaining([
      'notify-api:graphql mutation.sendNotification',
      'notify-delivery:planner.slice',
      'notify-delivery:bus.publish',
      'notify-delivery:delivery.plan-page',
      'notify-delivery:provider.send',
    ]));
    const mine = spans.filter((s) => s.traceId === traceId);
    const byName = (n: string) => mine.find((s) => s.name === n)!;
    expect(byName('planner.slice').parentSpanId).toBe(byName('graphql mutation.sendNotification').spanId);
    expect(byName('delivery.plan-page').parentSpanId).toBe(byName('bus.publish').spanId);
    expect(byName('provider.send').parentSpanId).toBe(byName('bus.publish').spanId);
  }, 120_000);
});
