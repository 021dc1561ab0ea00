import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '#platform/logger';
import { faultyEventStore } from '#platform/testing/faulty';
import type { EventStoreOp, Faults } from '#platform/testing/faulty';
import { loadConfig } from './config';
import { startApp, type App } from './app';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { until } from './testing/until';

/** The value of one series (labels in the exposition's order), 0 when it is absent. */
const series = (text: string, name: string, labels: Record<string, string> = {}): number => {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => {
    if (!l.startsWith(`${name}{`) && !l.startsWith(`${name} `)) return false;
    return want.every((w) => l.includes(w));
  });
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
};

describe('the ops port of the embedded default (every role in one process)', () => {
  let h: Harness;
  let admin: string;
  const logLines: string[] = [];
  const ops = () => h.app.ops!.url;
  const scrape = async () => (await fetch(`${ops()}/metrics`)).text();

  beforeAll(async () => {
    h = await startHarness({ logLines });
    admin = await registerTenant(h, 'acme');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "all", name: "All" }) { groupId } }`);
    for (let u = 0; u < 2; u++) {
      await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
        in: { userId: `u${u}`, name: `Ops User ${u}`, groupIds: ['all'], consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: `+8210999900${u}0` }, { kind: 'EMAIL', address: `ops-${u}@example.com` }] },
      });
    }
  });
  afterAll(() => h.stop());

  it('answers /livez, /startupz and /readyz, naming what readiness checked', async () => {
    expect((await fetch(`${ops()}/livez`)).status).toBe(200);
    expect((await fetch(`${ops()}/startupz`)).status).toBe(200);
    const ready = await fetch(`${ops()}/readyz`);
    expect(ready.status).toBe(200);
    const body = (await ready.json()) as { status: string; checks: Record<string, { ok: boolean }>; components: Record<string, unknown> };
    expect(body.status).toBe('ready');
    expect(Object.keys(body.checks).sort()).toEqual(['api', 'bus', 'event-store', 'key-vault', 'read-store']);
    expect(Object.keys(body.components)).toEqual(expect.arrayContaining(['projections:audience', 'planner', 'expiry', 'live-hub']));
    expect((await fetch(`${ops()}/nope`)).status).toBe(404);
    // The API's own port keeps /healthz for load balancers; metrics are on the ops port only.
    expect((await fetch(h.url.replace('/graphql', '/healthz'))).status).toBe(200);
    expect((await fetch(h.url.replace('/graphql', '/metrics'))).status).toBe(404);
  });

  it('echoes the caller\'s x-request-id (or makes one) and writes one access line per operation, carrying it', async () => {
    const given = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, 'x-request-id': 'req-ops-42' }, body: JSON.stringify({ query: 'query Mine { groups { nodes { groupId } } }' }) });
    expect(given.headers.get('x-request-id')).toBe('req-ops-42');
    const made = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer not-a-key', 'x-request-id': 'bad id with spaces' }, body: JSON.stringify({ query: '{ groups { nodes { groupId } } }' }) });
    const madeId = made.headers.get('x-request-id')!;
    expect(madeId).toMatch(/^[0-9A-Z]{26}$/);
    await until(async () => logLines.some((l) => l.includes(madeId)), 2_000, 'the access line');
    const access = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l['msg'] === 'graphql');
    expect(access.find((l) => l['requestId'] === 'req-ops-42')).toMatchObject({ operation: 'query.groups', operationName: 'Mine', tenantId: 'acme', status: 200, code: null });
    expect(access.find((l) => l['requestId'] === madeId)).toMatchObject({ operation: 'unknown', tenantId: null, status: 401, code: 'UNAUTHENTICATED' });
    // The id lands in the events the request caused, so a log line and an event join on it.
    const r = await fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, 'x-request-id': 'req-ops-43' }, body: JSON.stringify({ query: 'mutation { createGroup(input: { groupId: "joined", name: "Joined" }) { groupId } }' }) });
    expect(r.status).toBe(200);
    const events = await h.app.eventStore.readAll({ after: 0, maxCount: 10_000, tenantId: 'acme' });
    expect(events.find((e) => e.type === 'GroupCreated' && e.metadata.requestId === 'req-ops-43')).toBeDefined();
  });

  it('writes an access line for each WebSocket subscribe too, and counts it', async () => {
    const client = h.ws(admin);
    const events = client.iterate({ query: 'subscription Watch { deliveryEvents { type } }' });
    const first = events.next();
    await until(async () => logLines.some((l) => l.includes('"transport":"ws"')), 5_000, 'the subscribe\'s access line');
    const line = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['msg'] === 'graphql' && l['transport'] === 'ws')!;
    expect(line).toMatchObject({ operation: 'subscription.deliveryEvents', operationName: 'Watch', tenantId: 'acme', code: null });
    expect(line['requestId']).toMatch(/^[0-9A-Z]{26}$/);
    expect(series(await scrape(), 'notify_graphql_requests_total', { operation: 'subscription.deliveryEvents', outcome: 'ok', transport: 'ws' })).toBe(1);
    await events.return?.();
    void first.catch(() => undefined);
    await client.dispose();
  });

  it('GraphQL request metrics move by operation and outcome', async () => {
    const before = await scrape();
    await h.gql(admin, '{ groups { nodes { groupId } } }');
    await h.gql(admin, '{ group(groupId: "missing") { groupId } }');
    await h.gql(admin, 'mutation { createGroup(input: { groupId: "x y", name: "Bad" }) { groupId } }');
    const after = await scrape();
    const count = (text: string, labels: Record<string, string>) => series(text, 'notify_graphql_requests_total', labels);
    expect(count(after, { operation: 'query.groups', outcome: 'ok' }) - count(before, { operation: 'query.groups', outcome: 'ok' })).toBe(1);
    expect(count(after, { operation: 'mutation.createGroup', outcome: 'BAD_USER_INPUT' }) - count(before, { operation: 'mutation.createGroup', outcome: 'BAD_USER_INPUT' })).toBe(1);
    const latency = (text: string) => series(text, 'notify_graphql_request_duration_seconds_count', { operation: 'query.groups' });
    expect(latency(after) - latency(before)).toBe(1);
  });

  it('delivery metrics move with a send: planned, delivered by outcome/channel/integration/tenant, deadline slack at acceptance', async () => {
    const before = await scrape();
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "all", text: "ops metrics" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;
    await until(async () => (await h.ok<any>(admin, `{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 30_000, 'the send to complete');
    const after = await scrape();
    const delta = (name: string, labels: Record<string, string> = {}) => series(after, name, labels) - series(before, name, labels);
    expect(delta('notify_planner_notifications_sliced_total', { tenant: 'acme' })).toBe(1);
    expect(delta('notify_planner_deliveries_planned_total', { tenant: 'acme', channel: 'sms' })).toBe(2);
    expect(delta('notify_deliveries_total', { outcome: 'succeeded', channel: 'sms', tenant: 'acme' })).toBe(2);
    expect(delta('notify_deliveries_total', { outcome: 'succeeded', channel: 'email', tenant: 'acme' })).toBe(2);
    // Accepted well inside the tenant's deadline: every observation in a bucket above 10 minutes.
    expect(delta('notify_delivery_deadline_slack_seconds_count', { channel: 'sms' })).toBe(2);
    expect(delta('notify_delivery_deadline_slack_seconds_bucket', { channel: 'sms', le: '300' })).toBe(0);
    // Caught up: no projection, planner or bus lag left once the send completed.
    await h.app.settle();
    const settled = await scrape();
    expect(series(settled, 'notify_projection_lag_positions', { read_model: 'users' })).toBe(0);
    expect(series(settled, 'notify_bus_consumer_lag', { partition: '0' })).toBe(0);
    expect(series(settled, 'notify_planner_lag_positions', { planner: 'slices' })).toBe(0);
    expect(settled).toMatch(/notify_expiry_backlog 0/);
  });

  it('the breaker gauge follows an integration\'s circuit through an outage', async () => {
    const sandbox = h.app.sandbox!;
    const primary = sandbox.instance('twilio');
    primary.setFaults({ outage: true });
    try {
      const gauge = async () => series(await scrape(), 'notify_provider_breaker_state', { integration: 'platform/twilio' });
      for (let i = 0; i < 6 && (await gauge()) !== 2; i++) {
        await h.ok(admin, `mutation { sendNotification(input: { groupId: "all", text: "outage ${i}" }) { notification { notificationId } } }`);
        await new Promise((r) => setTimeout(r, 500));
      }
      await until(async () => (await gauge()) === 2, 15_000, 'the breaker to open');
    } finally {
      primary.setFaults({ outage: false });
    }
  });
});

describe('readiness follows the stores', () => {
  let app: App;
  let faults: Faults<EventStoreOp>;
  beforeAll(async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-ops-'));
    app = await startApp(loadConfig({ PORT: '0', OPS_PORT: '0', DATA_DIR: dataDir, ROLES: 'projections,delivery', SANDBOX: 'embedded', READINESS_TIMEOUT_MS: '200' }), {
      logger: createLogger('silent'),
      wrapInfrastructure: (i) => {
        const eventStore = faultyEventStore(i.eventStore);
        faults = eventStore.faults;
        return { ...i, eventStore };
      },
    });
  });
  afterAll(() => app.stop());

  it('turns not ready within seconds of the event store failing, and ready again once it answers', async () => {
    const status = async () => (await fetch(`${app.ops!.url}/readyz`)).status;
    expect(await status()).toBe(200);
    faults.failing('headPosition', true);
    await until(async () => (await status()) === 503, 5_000, 'not ready');
    const body = (await (await fetch(`${app.ops!.url}/readyz`)).json()) as { checks: Record<string, { ok: boolean; reason: string }> };
    expect(body.checks['event-store']).toMatchObject({ ok: false, reason: expect.stringContaining('injected fault') });
    // Liveness is not readiness: the process is not wedged, it must not be restarted for this.
    expect((await fetch(`${app.ops!.url}/livez`)).status).toBe(200);
    faults.failing('headPosition', false);
    await until(async () => (await status()) === 200, 10_000, 'ready again');
  });

  it('answers not ready (draining) from the moment it stops', async () => {
    const url = app.ops!.url;
    const stopping = app.stop();
    const r = await fetch(`${url}/readyz`).then((res) => res.status, () => 'closed');
    expect([503, 'closed']).toContain(r);
    await stopping;
    await expect(fetch(`${url}/livez`)).rejects.toThrow();
  });
});
