import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerTenant, startHarness, type Harness } from './testing/harness';

/** What the API gained for the dashboard, and how the api role serves its files. */
describe('the API behind the dashboard', () => {
  let h: Harness;
  let admin: string;
  let adminB: string;
  let dir: string;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'notify-dashboard-files-'));
    fs.mkdirSync(path.join(dir, 'assets'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>d</title>');
    fs.writeFileSync(path.join(dir, 'assets', 'app-1.js'), 'export {};');
    h = await startHarness({ dashboardDir: dir, env: { SANDBOX_LATENCY_MS: '5' } });
    admin = await registerTenant(h, 'dapi-a');
    adminB = await registerTenant(h, 'dapi-b');
    await h.ok(admin, `mutation { registerUser(input: { userId: "u", name: "Ada", consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: EMAIL, address: "ada@example.com" }] }) { userId } }`);
    await h.app.settle();
  }, 60_000);
  afterAll(() => h?.stop());

  const base = () => h.url.replace(/\/graphql$/, '');

  it('serves the built files under a strict CSP, refuses paths outside them, and says when nothing is built', async () => {
    const redirect = await fetch(`${base()}/dashboard`, { redirect: 'manual' });
    expect(redirect.status).toBe(308);
    expect(redirect.headers.get('location')).toBe('/dashboard/');
    const index = await fetch(`${base()}/dashboard/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-security-policy')).toMatch(/^default-src 'none'; script-src 'self';/);
    expect(index.headers.get('cache-control')).toBe('no-cache');
    const asset = await fetch(`${base()}/dashboard/assets/app-1.js`);
    expect(asset.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect((await fetch(`${base()}/dashboard/%2e%2e/%2e%2e/package.json`)).status).toBe(404);
    expect((await fetch(`${base()}/dashboard/assets/missing.js`)).status).toBe(404);
    expect((await fetch(`${base()}/dashboard/`, { method: 'POST' })).status).toBe(405);
    fs.rmSync(path.join(dir, 'index.html'));
    const unbuilt = await fetch(`${base()}/dashboard/`);
    expect(unbuilt.status).toBe(404);
    expect(await unbuilt.text()).toMatch(/not built: run `npm run build`/);
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>d</title>');
  });

  it('deliveryEvents(types) streams only those types', async () => {
    const it = h.ws(admin).iterate({ query: `subscription { deliveryEvents(types: ["NotificationRequested"]) { type notificationId } }` });
    await new Promise((r) => setTimeout(r, 100));
    await h.ok(admin, `mutation { updateUser(input: { userId: "u", optIn: true }) { userId } }`);
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["u"], text: "hi" }) { notification { notificationId } } }`);
    const first = (await it.next()).value as any;
    expect(first.data.deliveryEvents).toEqual({ type: 'NotificationRequested', notificationId: sent.sendNotification.notification.notificationId });
    await it.return?.();
  });

  it("providerBreakers streams the tenant's own and the platform's breaker changes, never another tenant's", async () => {
    const a = h.ws(admin).iterate({ query: `subscription { providerBreakers { owner name breaker { state reason } lastError { code } } }` });
    const b = h.ws(adminB).iterate({ query: `subscription { providerBreakers { owner name breaker { state } } }` });
    await new Promise((r) => setTimeout(r, 100));
    const change = (owner: string, name: string, state: string) =>
      h.app.eventStore.appendToStream(`provider-${owner}.${name}`, [{
        type: 'ProviderCircuitChanged',
        data: { provider: name, owner, channel: 'email', state, reason: 'test', lastFailure: 'http-503' },
        metadata: { tenantId: owner, actor: 'system', requestId: 'test', at: new Date().toISOString() },
      }] as any);
    await change('dapi-a', 'own-mail', 'open');
    await change('platform', 'sendgrid', 'half-open');
    expect(((await a.next()).value as any).data.providerBreakers).toEqual({ owner: 'dapi-a', name: 'own-mail', breaker: { state: 'OPEN', reason: 'test' }, lastError: { code: 'http-503' } });
    expect(((await a.next()).value as any).data.providerBreakers).toMatchObject({ owner: 'platform', name: 'sendgrid', breaker: { state: 'HALF_OPEN' }, lastError: null });
    // B's first change is the platform's: A's own never reached it.
    expect(((await b.next()).value as any).data.providerBreakers).toMatchObject({ owner: 'platform', name: 'sendgrid' });
    await a.return?.();
    await b.return?.();
  });

  it("the operator sees every tenant's integrations' health, without their settings or credentials, and their breakers live", async () => {
    const twilio = { accountSid: `AC${'c'.repeat(32)}`, authToken: 'd'.repeat(32), from: '+15005550007' };
    await h.ok(admin, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in) { name } }`, { in: { name: 'own-sms', channel: 'SMS', twilio } });
    await h.app.settle();
    const all = h.ws(h.operatorKey).iterate({ query: `subscription { providerBreakers(tenantId: "*") { owner name breaker { state } } }` });
    await new Promise((r) => setTimeout(r, 100));
    await h.app.eventStore.appendToStream('provider-dapi-a.own-sms', [{
      type: 'ProviderCircuitChanged',
      data: { provider: 'own-sms', owner: 'dapi-a', channel: 'sms', state: 'open', reason: 'test', lastFailure: 'twilio-20003' },
      metadata: { tenantId: 'dapi-a', actor: 'system', requestId: 'test', at: new Date().toISOString() },
    }] as any);
    expect(((await all.next()).value as any).data.providerBreakers).toEqual({ owner: 'dapi-a', name: 'own-sms', breaker: { state: 'OPEN' } });
    await all.return?.();
    await h.app.settle();
    const health = (await h.ok<any>(h.operatorKey, `{ providerHealth(tenantId: "dapi-a") { owner name vendor channel breaker { state } lastError { code } credentialsRejected } }`)).providerHealth;
    expect(health).toEqual([{ owner: 'dapi-a', name: 'own-sms', vendor: 'TWILIO', channel: 'SMS', breaker: { state: 'OPEN' }, lastError: { code: 'twilio-20003' }, credentialsRejected: null }]);
    expect((await h.gql(admin, `{ providerHealth(tenantId: "dapi-a") { name } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const sneaky = await h.ws(adminB).iterate({ query: `subscription { providerBreakers(tenantId: "*") { name } }` }).next();
    expect((sneaky.value as any).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('a notification carries its admission estimate and, once completed, when', async () => {
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { userIds: ["u"], text: "estimate" }) { notification { notificationId } estimate { deliveries seconds } } }`);
    const id = sent.sendNotification.notification.notificationId;
    const end = Date.now() + 30_000;
    let n: any;
    do {
      await new Promise((r) => setTimeout(r, 100));
      n = (await h.ok<any>(admin, `{ notification(notificationId: "${id}") { status requestedAt completedAt estimate { deliveries seconds fitsDeadline } } }`)).notification;
    } while (n.status !== 'COMPLETED' && Date.now() < end);
    expect(n.status).toBe('COMPLETED');
    expect(n.estimate).toEqual({ ...sent.sendNotification.estimate, fitsDeadline: true });
    expect(Date.parse(n.completedAt)).toBeGreaterThanOrEqual(Date.parse(n.requestedAt));
  });

  it('erasure is null until the user is shredded, then says when', async () => {
    await h.ok(admin, `mutation { registerUser(input: { userId: "gone", name: "Bo", consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: SMS, address: "+821011112222" }] }) { userId } }`);
    await h.app.settle();
    expect((await h.ok<any>(admin, `{ erasure(userId: "gone") { shreddedAt } }`)).erasure).toBeNull();
    const forgotten = await h.ok<any>(admin, `mutation { forgetUser(userId: "gone") { shreddedAt } }`);
    await h.app.settle();
    // The time of the UserDataShredded event, which the mutation's answer follows by a few milliseconds.
    const erasure = (await h.ok<any>(admin, `{ erasure(userId: "gone") { userId shreddedAt } }`)).erasure;
    expect(erasure.userId).toBe('gone');
    expect(Math.abs(Date.parse(erasure.shreddedAt) - Date.parse(forgotten.forgetUser.shreddedAt))).toBeLessThan(1_000);
    // Another tenant's key learns nothing of it.
    expect((await h.ok<any>(adminB, `{ erasure(userId: "gone") { shreddedAt } }`)).erasure).toBeNull();
  });

  it('auditVerification checks the tenant chain for AUDIT_READ keys only', async () => {
    const report = (await h.ok<any>(admin, `{ auditVerification { ok checked lastPosition firstBreak { position } } }`)).auditVerification;
    expect(report).toMatchObject({ ok: true, firstBreak: null });
    expect(report.checked).toBeGreaterThan(3);
    const reader = (await h.ok<any>(admin, `mutation { issueApiKey(input: { name: "r", scopes: [READ] }) { token } }`)).issueApiKey.token;
    const refused = await h.gql(reader, `{ auditVerification { ok } }`);
    expect(refused.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
