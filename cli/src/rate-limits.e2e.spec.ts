import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';

const CONSENT = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };

const raw = (h: Harness, key: string, query: string) =>
  fetch(h.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query }) });

describe('rate limits per tenant and per API key', () => {
  let h: Harness;
  let admin: string;

  beforeAll(async () => {
    h = await startHarness({
      env: { ...API_ONLY, RATE_LIMIT_KEY_REQUESTS: '20', RATE_LIMIT_TENANT_REQUESTS: '30', RATE_LIMIT_KEY_SENDS: '3', RATE_LIMIT_TENANT_SENDS: '4' },
    });
    admin = await registerTenant(h, 'acme');
  });
  afterAll(() => h.stop());

  it('answers a key over its requests a minute with 429, RATE_LIMITED and Retry-After; the tenant limit holds across its keys', async () => {
    const other = (await h.ok<any>(admin, `mutation { issueApiKey(input: { name: "b", scopes: [READ] }) { token } }`)).issueApiKey.token as string;
    // admin has made 2 requests (registerTenant is the operator's; issueApiKey above is admin's first).
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await raw(h, admin, '{ me { keyId } }')).status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    const refused = await raw(h, admin, '{ me { keyId } }');
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    const body = (await refused.json()) as any;
    expect(body.errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(body.errors[0].message).toMatch(/this API key's requests are limited to 20 a minute/);
    // The other key has its own 20, but the tenant's 30 run out first.
    const otherStatuses: number[] = [];
    for (let i = 0; i < 12; i++) otherStatuses.push((await raw(h, other, '{ me { keyId } }')).status);
    expect(otherStatuses.slice(0, 8).every((s) => s === 200)).toBe(true);
    expect(otherStatuses.at(-1)).toBe(429);
  });

  it("counts sends apart and refuses before appending; the operator raises one tenant's limits", async () => {
    const beta = await registerTenant(h, 'beta');
    await h.ok(beta, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, { in: { userId: 'u', name: 'U', consent: CONSENT, devices: [{ kind: 'EMAIL', address: 'u@example.com' }] } });
    const send = (i: number) => h.gql(beta, `mutation { sendNotification(input: { userIds: ["u"], text: "hi ${i}" }) { duplicate } }`);
    for (let i = 0; i < 3; i++) expect((await send(i)).errors).toBeUndefined();
    const head = await h.app.eventStore.headPosition();
    const refused = await send(3);
    expect(refused.status).toBe(429);
    expect(refused.errors![0]!.extensions!.code).toBe('RATE_LIMITED');
    expect(await h.app.eventStore.headPosition()).toBe(head);
    // Two sends in one request count two.
    expect((await h.gql(beta, `mutation { a: sendNotification(input: { userIds: ["u"], text: "a" }) { duplicate } b: sendNotification(input: { userIds: ["u"], text: "b" }) { duplicate } }`)).status).toBe(429);

    // Only the operator sets limits; the tenant's admin reads them.
    const forbidden = await h.gql(beta, `mutation { setTenantLimits(tenantId: "beta", input: { keySendsPerMinute: 1000 }) { custom } }`);
    expect(forbidden.errors![0]!.extensions!.code).toBe('FORBIDDEN');
    const set = await h.ok<any>(h.operatorKey, `mutation { setTenantLimits(tenantId: "beta", input: { keySendsPerMinute: 0, sendsPerMinute: 100, requestsPerMinute: 1000, keyRequestsPerMinute: 1000 }) { tenantId sendsPerMinute keySendsPerMinute requestsPerMinute custom } }`);
    expect(set.setTenantLimits).toEqual({ tenantId: 'beta', sendsPerMinute: 100, keySendsPerMinute: 0, requestsPerMinute: 1000, custom: true });
    expect((await send(4)).errors).toBeUndefined();
    expect((await h.ok<any>(beta, `{ tenantLimits { sendsPerMinute keyRequestsPerMinute } }`)).tenantLimits).toEqual({ sendsPerMinute: 100, keyRequestsPerMinute: 1000 });
    const invalid = await h.gql(h.operatorKey, `mutation { setTenantLimits(tenantId: "beta", input: { sendsPerMinute: -1 }) { custom } }`);
    expect(invalid.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'input.sendsPerMinute' });
    const missing = await h.gql(h.operatorKey, `mutation { setTenantLimits(tenantId: "nobody", input: {}) { custom } }`);
    expect(missing.errors![0]!.extensions!.code).toBe('NOT_FOUND');
  });
});

type ClientRun = Readonly<{ statuses: Record<string, number>; latencies: number[] }>;

/**
 * A client in a process of its own, as a tenant's is: `concurrency` loops posting `query` for
 * `ms` after `delayMs`, each pausing `pauseMs` between requests. It records each status and
 * each request's latency, response read in full. Its event loop is not the service's, so the
 * latencies are the service's, not the test process's (which runs the service) waiting on itself.
 */
const client = (url: string, key: string, o: Readonly<{ query: string; ms: number; concurrency: number; delayMs?: number; pauseMs?: number }>) =>
  new Promise<ClientRun>((resolve, reject) => {
    const script = `
      const http = require('node:http');
      const agent = new http.Agent({ keepAlive: true, maxSockets: ${o.concurrency} });
      const body = ${JSON.stringify(JSON.stringify({ query: o.query }))};
      const statuses = {};
      const latencies = [];
      const one = () => new Promise((done) => {
        const started = performance.now();
        const req = http.request(${JSON.stringify(url)}, { method: 'POST', agent, headers: { 'content-type': 'application/json', authorization: 'Bearer ${key}' } }, (res) => {
          res.resume();
          res.on('end', () => { statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1; latencies.push(performance.now() - started); done(); });
        });
        req.on('error', (e) => { statuses[e.code || 'error'] = (statuses[e.code || 'error'] || 0) + 1; done(); });
        req.end(body);
      });
      const pause = () => new Promise((r) => setTimeout(r, ${o.pauseMs ?? 0}));
      setTimeout(() => {
        const end = Date.now() + ${o.ms};
        const loop = async () => { while (Date.now() < end) { await one(); if (${o.pauseMs ?? 0} > 0) await pause(); } };
        Promise.all(Array.from({ length: ${o.concurrency} }, loop)).then(() => { process.stdout.write(JSON.stringify({ statuses, latencies })); agent.destroy(); });
      }, ${o.delayMs ?? 0});
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('exit', () => resolve(JSON.parse(out || '{"statuses":{},"latencies":[]}') as ClientRun));
  });

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))]!;

describe('abuse: one tenant flooding does not slow another', () => {
  let h: Harness;

  beforeAll(async () => {
    // Limits low enough that the flood outruns them on any machine (a slow one floods at ~500 requests a second).
    h = await startHarness({ env: { ...API_ONLY, LOG_LEVEL: 'silent', RATE_LIMIT_KEY_REQUESTS: '600', RATE_LIMIT_TENANT_REQUESTS: '1200' } });
  });
  afterAll(() => h.stop());

  /**
   * The bound: while tenant A floods with 32 concurrent connections (its 600 requests a minute
   * spent in the first moments, everything after answered 429), tenant B's p99 latency stays under
   * 250 ms and under its own unloaded p99 plus 200 ms.
   */
  it("keeps tenant B's p99 within the bound while tenant A floods", async () => {
    const a = await registerTenant(h, 'flooder');
    const b = await registerTenant(h, 'victim');
    for (const [key, n] of [[a, 50], [b, 50]] as const) {
      for (let i = 0; i < n; i++) {
        await h.ok(key, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, { in: { userId: `u${i}`, name: `User ${i}`, consent: CONSENT, devices: [{ kind: 'EMAIL', address: `u${i}@example.com` }] } });
      }
    }
    await h.app.settle();
    const query = '{ users(first: 50) { nodes { userId name devices { address } } } }';
    // Tenant B alone, then while tenant A floods: B sends one request after another, 5 ms apart.
    const probe = { query, concurrency: 1, pauseMs: 5 };
    const baselineRun = await client(h.url, b, { ...probe, ms: 1_500 });
    const [floodedRun, floodRun] = await Promise.all([client(h.url, b, { ...probe, ms: 3_000, delayMs: 300 }), client(h.url, a, { query, ms: 3_600, concurrency: 32 })]);
    for (const run of [baselineRun, floodedRun]) expect(run.statuses).toEqual({ 200: run.latencies.length });
    const [baseline, flooded, counts] = [baselineRun.latencies, floodedRun.latencies, floodRun.statuses];
    const figures = { baselineP99: Math.round(p99(baseline)), floodedP99: Math.round(p99(flooded)), bRequests: flooded.length, slowest: [...flooded].sort((x, y) => y - x).slice(0, 3).map(Math.round), flood: counts };
    console.log(`abuse test: ${JSON.stringify(figures)}`);
    expect(counts['429'] ?? 0).toBeGreaterThan(0);
    expect(figures.floodedP99).toBeLessThan(250);
    expect(figures.floodedP99).toBeLessThan(figures.baselineP99 + 200);
  }, 60_000);
});
