import http2 from 'node:http2';
import https from 'node:https';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SandboxInstance, startSandbox, type Sandbox } from './index';

type Answer = { status: number; headers: Record<string, string | string[] | undefined>; body: string; ms: number };

describe('provider sandbox: fault settings through the control endpoint', () => {
  let sandbox: Sandbox;
  let agent: https.Agent;

  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${sandbox.control}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  /** One FCM send straight over HTTPS; `timeoutMs` aborts a hung request. */
  const fcm = (token: string, opts: { timeoutMs?: number; auth?: string; body?: unknown } = {}) =>
    new Promise<Answer | 'timeout'>((resolve, reject) => {
      const ep = sandbox.endpoints['fcm-primary']!;
      const started = performance.now();
      const payload = JSON.stringify(opts.body ?? { message: { token, notification: { body: 'hi' }, android: { collapse_key: `c-${token}` } } });
      const req = https.request(
        {
          host: ep.host,
          port: ep.port,
          agent,
          method: 'POST',
          path: `/v1/projects/${ep.project}/messages:send`,
          headers: { authorization: opts.auth ?? `Bearer ${sandbox.credentials.fcmAccessToken}`, 'content-type': 'application/json' },
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body, ms: performance.now() - started }));
        },
      );
      if (opts.timeoutMs !== undefined) req.setTimeout(opts.timeoutMs, () => {
        req.destroy();
        resolve('timeout');
      });
      req.on('error', reject);
      req.end(payload);
    });

  const answered = async (token: string, opts?: Parameters<typeof fcm>[1]) => {
    const a = await fcm(token, opts);
    if (a === 'timeout') throw new Error('timed out');
    return a;
  };

  beforeAll(async () => {
    sandbox = await startSandbox();
    agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: sandbox.ca });
  });
  afterAll(async () => {
    agent.destroy();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('lists every instance with its endpoint, faults and stats', async () => {
    const { status, json } = await control('GET', '');
    expect(status).toBe(200);
    const list = json.instances as { name: string; endpoint: { url: string } }[];
    expect(list.map((i) => i.name)).toEqual(['apns', 'fcm-ios', 'fcm-primary', 'fcm-secondary', 'sendgrid', 'smtp', 'twilio', 'sns']);
    expect(list.find((i) => i.name === 'smtp')!.endpoint.url).toMatch(/^smtp:\/\/127\.0\.0\.1:\d+$/);
    expect(sandbox.describe()).toEqual({ control: sandbox.control, ca: sandbox.ca, endpoints: sandbox.endpoints, credentials: sandbox.credentials });
  });

  it('records accepted messages, counts per address, and serves them over the control endpoint', async () => {
    for (const t of ['tok-a', 'tok-a', 'tok-b']) expect((await answered(t)).status).toBe(200);
    const inst = sandbox.instance('fcm-primary');
    expect(inst.count()).toBe(3);
    expect(inst.count({ address: 'tok-a' })).toBe(2);
    expect(inst.count({ deliveryId: 'c-tok-a' })).toBe(2);
    expect([...inst.duplicates('address')]).toEqual([['tok-a', 2]]);
    const { json } = await control('GET', '/fcm-primary/accepted?address=tok-a');
    expect(json.count).toBe(2);
    expect(json.messages).toEqual([
      expect.objectContaining({ address: 'tok-a', text: 'hi', collapseId: 'c-tok-a', instance: 'fcm-primary' }),
      expect.objectContaining({ address: 'tok-a' }),
    ]);
    expect((await control('DELETE', '/fcm-primary/accepted')).status).toBe(200);
    expect(inst.count()).toBe(0);
    expect(sandbox.instance('fcm-secondary').count()).toBe(0);
  });

  it('adds fixed latency and jitter', async () => {
    await control('PUT', '/fcm-primary', { latencyMs: 80, jitterMs: 40 });
    const times = await Promise.all(Array.from({ length: 20 }, (_, i) => answered(`lat-${i}`).then((a) => a.ms)));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(78);
    expect(Math.max(...times)).toBeLessThan(400);
    for (const m of sandbox.instance('fcm-primary').accepted()) expect(m.at - m.receivedAt).toBeGreaterThanOrEqual(78);
  });

  it('draws latency from a normal distribution (clamped at 0)', async () => {
    await control('PUT', '/fcm-primary', { latencyMs: 60, latencyStddevMs: 15 });
    const inst = sandbox.instance('fcm-primary');
    const samples = Array.from({ length: 20_000 }, () => inst.delay());
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    const sd = Math.sqrt(samples.reduce((a, b) => a + (b - mean) ** 2, 0) / samples.length);
    expect(mean).toBeGreaterThan(58);
    expect(mean).toBeLessThan(62);
    expect(sd).toBeGreaterThan(13.5);
    expect(sd).toBeLessThan(16.5);
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    const slowest = (await Promise.all(Array.from({ length: 10 }, (_, i) => answered(`n-${i}`)))).map((a) => a.ms);
    expect(Math.max(...slowest)).toBeGreaterThan(40);
  });

  it('answers roughly the configured share with transient 5xx', async () => {
    await control('PUT', '/fcm-primary', { errorRate: 0.3 });
    const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => answered(`e-${i}`)));
    const failed = answers.filter((a) => a.status >= 500);
    expect(failed.length / answers.length).toBeGreaterThan(0.2);
    expect(failed.length / answers.length).toBeLessThan(0.4);
    expect(new Set(failed.map((a) => JSON.parse(a.body).error.status))).toEqual(new Set(['INTERNAL', 'UNAVAILABLE']));
    expect(sandbox.instance('fcm-primary').count()).toBe(400 - failed.length);
  });

  it('answers everything 503 with Retry-After during an outage, and recovers', async () => {
    await control('PUT', '/fcm-primary', { outage: true, retryAfterSeconds: 7 });
    const a = await answered('o-1');
    expect(a.status).toBe(503);
    expect(a.headers['retry-after']).toBe('7');
    expect(JSON.parse(a.body).error).toMatchObject({ code: 503, status: 'UNAVAILABLE', details: [{ errorCode: 'UNAVAILABLE' }] });
    await control('PUT', '/fcm-primary', { outage: false });
    expect((await answered('o-2')).status).toBe(200);
  });

  it('hangs: the request is read and never answered, so the client times out', async () => {
    await control('PUT', '/fcm-primary', { hang: true });
    expect(await fcm('h-1', { timeoutMs: 300 })).toBe('timeout');
    expect(sandbox.instance('fcm-primary').stats()).toMatchObject({ requests: 1, hung: 1, accepted: 0 });
    await control('PUT', '/fcm-primary', { hang: false });
    expect((await answered('h-2')).status).toBe(200);
  });

  it('rate-limits with a token bucket: 429 QUOTA_EXCEEDED with Retry-After past the burst', async () => {
    await control('PUT', '/fcm-primary', { rateLimitPerSecond: 10, rateLimitBurst: 10 });
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => answered(`r-${i}`)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(10);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(20);
    expect(limited[0]!.headers['retry-after']).toBe('1');
    expect(JSON.parse(limited[0]!.body).error.details[0].errorCode).toBe('QUOTA_EXCEEDED');
    await new Promise((r) => setTimeout(r, 250));
    const later = await Promise.all(Array.from({ length: 5 }, (_, i) => answered(`r2-${i}`)));
    expect(later.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(later.filter((a) => a.status === 200).length).toBeLessThanOrEqual(4);
  });

  it('keeps each instance separate', async () => {
    await control('PUT', '/fcm-secondary', { outage: true });
    expect((await answered('s-1')).status).toBe(200);
    expect(sandbox.instance('fcm-secondary').faults().outage).toBe(true);
    expect(sandbox.instance('fcm-primary').faults().outage).toBe(false);
  });

  it('refuses listed addresses and validates like FCM', async () => {
    const put = await control('PUT', '/fcm-primary', { permanentFailures: { 'gone-1': 'unregistered', 'weird-1': 'invalid' } });
    expect(put.json.permanentFailures).toEqual({ 'gone-1': 'unregistered', 'weird-1': 'invalid' });
    const gone = await answered('gone-1');
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.body).error.details[0].errorCode).toBe('UNREGISTERED');
    expect((await answered('weird-1')).status).toBe(400);
    expect((await answered('bad-prefix')).status).toBe(400);
    const twoTargets = await answered('x', { body: { message: { token: 'a', topic: 'b' } } });
    expect(twoTargets.status).toBe(400);
    expect(JSON.parse(twoTargets.body).error.details).toEqual([
      { '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'INVALID_ARGUMENT' },
      expect.objectContaining({ '@type': 'type.googleapis.com/google.rpc.BadRequest' }),
    ]);
    expect((await answered('x', { body: { message: { token: 'a', data: { n: 1 } } } })).status).toBe(400);
    expect((await answered('x', { body: { message: { token: 'a', bogus: 1 } } })).status).toBe(400);
    expect((await answered('x', { auth: 'Bearer nope' })).status).toBe(401);
    expect(sandbox.instance('fcm-primary').count()).toBe(0);
  });

  it('rejects bad control input', async () => {
    expect((await control('PUT', '/fcm-primary', { errorRate: 2 })).status).toBe(400);
    expect((await control('PUT', '/fcm-primary', { nope: true })).status).toBe(400);
    expect((await control('GET', '/nope')).status).toBe(404);
    const reset = await control('PUT', '/fcm-primary', { latencyMs: 5 });
    expect((reset.json.faults as { latencyMs: number }).latencyMs).toBe(5);
    expect(((await control('DELETE', '/fcm-primary')).json.faults as { latencyMs: number }).latencyMs).toBe(0);
  });

  it('checks APNs provider tokens', async () => {
    const ep = sandbox.endpoints.apns!;
    const session = http2.connect(ep.url, { ca: sandbox.ca });
    try {
      const ask = (headers: Record<string, string>) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = session.request({ ':method': 'POST', ':path': `/3/device/${'ab'.repeat(32)}`, 'apns-topic': 'x', ...headers });
          let status = 0;
          let body = '';
          req.on('response', (h) => (status = Number(h[':status'])));
          req.setEncoding('utf8');
          req.on('data', (c: string) => (body += c));
          req.on('end', () => resolve({ status, body }));
          req.on('error', reject);
          req.end('{"aps":{"alert":"x"}}');
        });
      expect(await ask({})).toEqual({ status: 403, body: '{"reason":"MissingProviderToken"}' });
      expect(await ask({ authorization: 'bearer a.b.c' })).toEqual({ status: 403, body: '{"reason":"InvalidProviderToken"}' });
    } finally {
      session.close();
    }
  });

  it('keeps a bounded log, or none, while counting everything', () => {
    const inst = new SandboxInstance('x', 'fcm', {}, { logLimit: 3 });
    for (let i = 0; i < 5; i++) inst.record({ id: String(i), instance: 'x', address: `a${i % 2}`, text: 't', receivedAt: i, at: i });
    expect(inst.accepted().map((m) => m.id)).toEqual(['2', '3', '4']);
    expect(inst.count()).toBe(5);
    expect(inst.count({ address: 'a0' })).toBe(3);
    inst.setRecording({ logLimit: 0, countByAddress: false });
    inst.record({ id: '5', instance: 'x', address: 'a0', text: 't', receivedAt: 5, at: 5 });
    expect(inst.accepted()).toEqual([]);
    expect(inst.count()).toBe(6);
    expect(inst.count({ address: 'a0' })).toBe(0);
  });
});
