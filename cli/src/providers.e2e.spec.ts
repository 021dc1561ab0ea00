import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { scanFiles } from '#platform/testing/scan';
import { streams } from '#schema/streams';
import { API_ONLY, registerTenant, startHarness, type Harness } from './testing/harness';
import { until } from './testing/until';

/** Two tenants, each with its own APNs, FCM and SendGrid integrations, and one platform SMS default. */

const pem = (k: crypto.KeyObject) => (k.type === 'private' ? k.export({ type: 'pkcs8', format: 'pem' }) : k.export({ type: 'spki', format: 'pem' })).toString();
const upper = (n: number) => crypto.randomBytes(n).toString('hex').toUpperCase().slice(0, n);

/** A tenant's own credentials, in the vendors' formats, and what the sandbox knows of them. */
const credentialsFor = (tenant: string) => {
  const apnsKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const fcmKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    tenant,
    apns: { key: pem(apnsKey.privateKey), publicKey: pem(apnsKey.publicKey), keyId: upper(10), teamId: upper(10), topic: `com.${tenant}.app` },
    fcm: { privateKey: pem(fcmKey.privateKey), publicKey: pem(fcmKey.publicKey), clientEmail: `push@${tenant}-project.iam.gserviceaccount.com` },
    sendgrid: `SG.${crypto.randomBytes(16).toString('base64url')}.${crypto.randomBytes(32).toString('base64url')}`,
  };
};
type Credentials = ReturnType<typeof credentialsFor>;

const sha12 = (s: string) => crypto.createHash('sha256').update(s).digest('hex').slice(0, 12);

describe('provider integrations per tenant', () => {
  let h: Harness;
  const logLines: string[] = [];
  /** Every GraphQL answer of the test, scanned for secrets at the end. */
  const answers: string[] = [];
  const admin: Record<string, string> = {};
  const creds: Record<string, Credentials> = { acme: credentialsFor('acme'), globex: credentialsFor('globex') };
  const hooks: { body: string; headers: http.IncomingHttpHeaders }[] = [];
  let receiver: http.Server;
  let webhookSecret = '';

  const gql = async (key: string, query: string, variables?: Record<string, unknown>) => {
    const r = await h.gql<any>(key, query, variables);
    answers.push(JSON.stringify(r));
    return r;
  };
  const ok = async (key: string, query: string, variables?: Record<string, unknown>) => {
    const r = await gql(key, query, variables);
    if (r.errors) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors)}`);
    return r.data;
  };
  const configure = (tenant: string, input: Record<string, unknown>) =>
    ok(admin[tenant]!, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in) { name vendor channel credentials { fingerprint hint } } }`, { in: input });

  const send = async (tenant: string, text: string) => {
    const sent = await ok(admin[tenant]!, `mutation($t: String!) { sendNotification(input: { groupId: "all", text: $t }) { notification { notificationId deadline } } }`, { t: text });
    const id = sent.sendNotification.notification.notificationId as string;
    await until(async () => (await ok(admin[tenant]!, `{ notification(notificationId: "${id}") { status } }`)).notification.status === 'COMPLETED', 60_000, `${tenant}'s send to complete`);
    return { id, deadline: Date.parse(sent.sendNotification.notification.deadline) };
  };
  const progress = async (tenant: string, id: string) =>
    (await ok(admin[tenant]!, `{ notification(notificationId: "${id}") { progress { total succeeded failed delivered bounced byProvider { key succeeded } } } }`)).notification.progress;
  const providers = async (tenant: string) =>
    (await ok(admin[tenant]!, `{ providers { owner name vendor breaker { state } lastError { code } credentialsRejected } }`)).providers as any[];

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        hooks.push({ body, headers: req.headers });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    h = await startHarness({
      env: { SANDBOX_LATENCY_MS: '0', ALLOW_TENANT_ENDPOINTS: 'true', WEBHOOK_ALLOW_HTTP_LOCALHOST: 'true' },
      logLines,
      delivery: {},
    });
    const sandbox = h.app.sandbox!;
    const api = h.url.replace(/\/graphql$/, '');
    // The platform keeps one default: SMS through Twilio.
    for (const name of ['apns', 'fcm-ios', 'fcm-primary', 'fcm-secondary', 'sendgrid', 'smtp', 'sns']) {
      await ok(h.operatorKey, `mutation { removeProvider(name: "${name}", tenantId: "platform") }`);
    }
    for (const [tenant, c] of Object.entries(creds)) {
      admin[tenant] = await registerTenant(h, tenant);
      sandbox.instance('apns').registerCredential({ keyId: c.apns.keyId, teamId: c.apns.teamId, publicKey: c.apns.publicKey });
      for (const fcm of ['fcm-primary', 'fcm-ios']) sandbox.instance(fcm).registerCredential({ clientEmail: c.fcm.clientEmail, publicKey: c.fcm.publicKey });
      sandbox.instance('sendgrid').registerCredential({ apiKey: c.sendgrid });
      sandbox.instance('sendgrid').setEventWebhook(c.sendgrid, `${api}/webhooks/sendgrid/${tenant}/mail`);
      const serviceAccount = (project: string) => JSON.stringify({ type: 'service_account', project_id: project, client_email: c.fcm.clientEmail, private_key: c.fcm.privateKey, private_key_id: crypto.randomBytes(20).toString('hex') });
      await configure(tenant, { name: 'apns-main', channel: 'IOS', priority: 0, endpoint: sandbox.endpoints['apns']!.url, ca: sandbox.ca, apns: { key: c.apns.key, keyId: c.apns.keyId, teamId: c.apns.teamId, topic: c.apns.topic, environment: 'development' } });
      await configure(tenant, { name: 'fcm-ios', channel: 'IOS', priority: 1, endpoint: sandbox.endpoints['fcm-ios']!.url, ca: sandbox.ca, fcm: { serviceAccount: serviceAccount(sandbox.endpoints['fcm-ios']!.project!) } });
      await configure(tenant, { name: 'fcm-android', channel: 'ANDROID', endpoint: sandbox.endpoints['fcm-primary']!.url, ca: sandbox.ca, fcm: { serviceAccount: serviceAccount(sandbox.endpoints['fcm-primary']!.project!) } });
      await configure(tenant, { name: 'mail', channel: 'EMAIL', endpoint: sandbox.endpoints['sendgrid']!.url, ca: sandbox.ca, sendgrid: { apiKey: c.sendgrid, from: `news@${tenant}.example`, webhookPublicKey: sandbox.credentials.sendgridWebhookPublicKey } });
      await ok(admin[tenant]!, `mutation { createGroup(input: { groupId: "all", name: "Everyone" }) { groupId } }`);
      for (let i = 0; i < 3; i++) {
        await ok(admin[tenant]!, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
          in: {
            userId: `u${i}`,
            name: `Person ${i}`,
            groupIds: ['all'],
            consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' },
            devices: [
              { kind: 'IOS', address: crypto.randomBytes(32).toString('hex') },
              { kind: 'ANDROID', address: `fcm-${tenant}-${i}-${'x'.repeat(40)}` },
              { kind: 'EMAIL', address: `p${i}@${tenant}-users.example` },
              { kind: 'SMS', address: `+8210${tenant === 'acme' ? 1 : 2}${String(1000000 + i)}` },
            ],
          },
        });
      }
    }
    const registered = await ok(admin['acme']!, `mutation($in: RegisterWebhookInput!) { registerWebhook(input: $in) { secret endpoint { endpointId } } }`, {
      in: { url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`, events: ['DELIVERY_CONFIRMED', 'NOTIFICATION_COMPLETED'] },
    });
    webhookSecret = registered.registerWebhook.secret;
  }, 120_000);
  afterAll(async () => {
    await h?.stop();
    receiver?.close();
  });

  it("sends each tenant's messages with that tenant's credentials only, expiring with the deadline", async () => {
    const sandbox = h.app.sandbox!;
    // One email of acme bounces at the mailbox.
    sandbox.instance('sendgrid').addReceiptFailures(['p2@acme-users.example'], 'bounce');
    const acme = await send('acme', 'for acme');
    const globex = await send('globex', 'for globex');
    for (const [tenant, sent] of [['acme', acme], ['globex', globex]] as const) {
      const c = creds[tenant]!;
      const p = await progress(tenant, sent.id);
      expect(p).toMatchObject({ total: 12, succeeded: 12, failed: 0 });
      expect(Object.fromEntries(p.byProvider.map((b: any) => [b.key, b.succeeded]))).toEqual({ 'apns-main': 3, 'fcm-android': 3, mail: 3, twilio: 3 });
      expect(sandbox.instance('apns').count({ credential: `apns:${c.apns.teamId}.${c.apns.keyId}` })).toBe(3);
      expect(sandbox.instance('fcm-primary').count({ credential: `fcm:${c.fcm.clientEmail}` })).toBe(3);
      expect(sandbox.instance('sendgrid').count({ credential: `sendgrid:${sha12(c.sendgrid)}` })).toBe(3);
      // The push expires when the tenant's deadline passes.
      const pushes = sandbox.instance('apns').accepted({ credential: `apns:${c.apns.teamId}.${c.apns.keyId}` });
      expect(pushes.every((m) => m.expiration === Math.floor(sent.deadline / 1000))).toBe(true);
    }
    // The platform's Twilio account sent both tenants' texts, with a validity no longer than the time left.
    const texts = sandbox.instance('twilio').accepted();
    expect(texts).toHaveLength(6);
    expect(texts.every((m) => Number(m.validityPeriod) > 0 && Number(m.validityPeriod) <= 15 * 60)).toBe(true);
    // Receipts come back signed: SMS through Twilio's status callbacks, email through SendGrid's events.
    await until(async () => {
      const p = await progress('acme', acme.id);
      return p.delivered === 5 && p.bounced === 1;
    }, 15_000, "acme's receipts");
    await until(async () => (await progress('globex', globex.id)).delivered === 6, 15_000, "globex's receipts");
    const timeline = await ok(admin['acme']!, `{ timeline(userId: "u2") { nodes { channel steps { step provider outcome } } } }`);
    const email = timeline.timeline.nodes.find((n: any) => n.channel === 'EMAIL');
    expect(email.steps.map((s: any) => s.step)).toEqual(['requested', 'attempted', 'succeeded', 'bounced']);
  }, 120_000);

  it('refuses a forged or unsigned receipt with 403 and records nothing', async () => {
    const api = h.url.replace(/\/graphql$/, '');
    const before = (await h.app.eventStore.readAll({ after: 0, maxCount: 100_000, types: ['DeliveryReceipted'] })).length;
    const twilioBody = new URLSearchParams({ MessageSid: 'SM1', MessageStatus: 'delivered', AccountSid: h.app.sandbox!.credentials.twilio.accountSid }).toString();
    const forged = [
      fetch(`${api}/webhooks/twilio/platform/twilio?r=abc`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: twilioBody }),
      fetch(`${api}/webhooks/twilio/platform/twilio?r=abc`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': crypto.createHmac('sha1', 'not-the-token').update('x').digest('base64') }, body: twilioBody }),
      fetch(`${api}/webhooks/sendgrid/acme/mail`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-twilio-email-event-webhook-signature': 'MEUCIQ==', 'x-twilio-email-event-webhook-timestamp': '1' }, body: '[{"event":"delivered"}]' }),
      fetch(`${api}/webhooks/sendgrid/globex/no-such-integration`, { method: 'POST', body: '[]' }),
    ];
    expect((await Promise.all(forged)).map((r) => r.status)).toEqual([403, 403, 403, 403]);
    await h.app.settle();
    expect((await h.app.eventStore.readAll({ after: 0, maxCount: 100_000, types: ['DeliveryReceipted'] })).length).toBe(before);
  });

  it('posts signed status webhooks to the tenant that registered them', async () => {
    await until(() => hooks.some((x) => x.body.includes('notification.completed')), 15_000, 'the webhooks');
    const wh = new Webhook(webhookSecret);
    const messages = hooks.flatMap((x) => wh.verify(x.body, x.headers as Record<string, string>) as { type: string; data: { tenantId: string } }[]);
    expect(new Set(messages.map((m) => m.type))).toEqual(new Set(['delivery.confirmed', 'notification.completed']));
    expect(messages.every((m) => m.data.tenantId === 'acme')).toBe(true);
    expect(() => wh.verify(hooks[0]!.body.replace('acme', 'acmf'), hooks[0]!.headers as Record<string, string>)).toThrow();
  });

  it("fails one tenant over when its APNs key is revoked, opening only that tenant's breaker", async () => {
    const sandbox = h.app.sandbox!;
    const acme = creds['acme']!;
    sandbox.instance('apns').revokeCredential(`apns:${acme.apns.teamId}.${acme.apns.keyId}`);
    const a = await send('acme', 'after the revocation');
    const pa = await progress('acme', a.id);
    expect(pa).toMatchObject({ total: 12, succeeded: 12, failed: 0 });
    expect(Object.fromEntries(pa.byProvider.map((b: any) => [b.key, b.succeeded]))).toMatchObject({ 'fcm-ios': 3 });
    const b = await send('globex', 'untouched');
    const pb = await progress('globex', b.id);
    expect(Object.fromEntries(pb.byProvider.map((x: any) => [x.key, x.succeeded]))).toMatchObject({ 'apns-main': 3 });
    await h.app.settle();
    const mine = (await providers('acme')).find((p) => p.owner === 'acme' && p.name === 'apns-main');
    expect(mine).toMatchObject({ credentialsRejected: 'InvalidProviderToken', breaker: { state: 'OPEN' }, lastError: { code: 'InvalidProviderToken' } });
    const theirs = (await providers('globex')).find((p) => p.owner === 'globex' && p.name === 'apns-main');
    expect(theirs.credentialsRejected).toBeNull();
    expect(theirs.breaker?.state ?? 'CLOSED').toBe('CLOSED');
    expect(h.app.delivery!.router.state('globex', 'apns-main')).toBe('closed');
    // The tenant's own integrations come first, the platform's follow.
    expect((await providers('acme')).map((p) => `${p.owner}/${p.name}`)).toEqual(['acme/fcm-android', 'acme/mail', 'acme/apns-main', 'acme/fcm-ios', 'platform/twilio']);
  }, 120_000);

  it('tests an integration with one message and answers with the verdict', async () => {
    const verdict = await ok(admin['globex']!, `mutation { testProvider(name: "apns-main", address: "${'ab'.repeat(32)}") { outcome credentialsRejected } }`);
    expect(verdict.testProvider).toEqual({ outcome: 'accepted', credentialsRejected: false });
    const rejected = await ok(admin['acme']!, `mutation { testProvider(name: "apns-main", address: "${'ab'.repeat(32)}") { outcome reason credentialsRejected } }`);
    expect(rejected.testProvider).toEqual({ outcome: 'transient', reason: 'InvalidProviderToken', credentialsRejected: true });
  });

  it('refuses bad credentials of every vendor, naming the field, and stores nothing', async () => {
    const head = await h.app.eventStore.headPosition();
    const bad: [Record<string, unknown>, string][] = [
      [{ name: 'x', channel: 'IOS', apns: { key: 'not a key', keyId: 'ABCDE12345', teamId: 'TEAM123456', topic: 'com.a.b' } }, 'apns.key'],
      [{ name: 'x', channel: 'IOS', apns: { key: creds['acme']!.fcm.privateKey, keyId: 'ABCDE12345', teamId: 'TEAM123456', topic: 'com.a.b' } }, 'apns.key'],
      [{ name: 'x', channel: 'ANDROID', fcm: { serviceAccount: '{"type":"service_account"}' } }, 'fcm.serviceAccount.project_id'],
      [{ name: 'x', channel: 'EMAIL', sendgrid: { apiKey: 'SG.short.key', from: 'a@b.example' } }, 'sendgrid.apiKey'],
      [{ name: 'x', channel: 'EMAIL', smtp: { url: 'http://mail.example', from: 'a@b.example' } }, 'smtp.url'],
      [{ name: 'x', channel: 'SMS', twilio: { accountSid: 'AC123', authToken: 'f'.repeat(32), from: '+15005550006' } }, 'twilio.accountSid'],
      [{ name: 'x', channel: 'SMS', sns: { region: 'mars-1', accessKeyId: 'AKIAAAAAAAAAAAAAAAAA', secretAccessKey: 'x'.repeat(40) } }, 'sns.region'],
      [{ name: 'x', channel: 'SMS', apns: { key: creds['acme']!.apns.key, keyId: 'ABCDE12345', teamId: 'TEAM123456', topic: 'com.a.b' } }, 'channel'],
    ];
    for (const [input, field] of bad) {
      const r = await gql(admin['acme']!, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in) { name } }`, { in: input });
      expect(r.errors?.[0]?.extensions, JSON.stringify(input).slice(0, 80)).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
    expect(await h.app.eventStore.headPosition()).toBe(head);
  });

  it('keeps every secret out of events, stores, logs and answers', async () => {
    await h.app.settle();
    const body = (p: string) => p.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    const secrets = Object.values(creds).flatMap((c) => [body(c.apns.key).slice(20, 60), body(c.fcm.privateKey).slice(40, 80), c.sendgrid, c.sendgrid.split('.')[2]!]);
    secrets.push(webhookSecret, webhookSecret.replace('whsec_', ''));
    // The log holds the sealed form; a replay for an auditor shows it as [secret].
    const events = await h.app.eventStore.readStream(streams.integrations('acme'));
    expect(events.some((e) => e.type === 'ProviderConfigured' && String((e.data as { credentials: string }).credentials).startsWith('pd2.'))).toBe(true);
    const audit = await ok(admin['acme']!, `{ auditLog(first: 500) { nodes { type data } } }`);
    const configured = audit.auditLog.nodes.filter((n: any) => n.type === 'ProviderConfigured' || n.type === 'WebhookEndpointRegistered');
    expect(configured.length).toBeGreaterThanOrEqual(5);
    for (const n of configured) expect(n.data).toMatch(/"(credentials|secret)":"\[secret\]"/);
    expect(await scanFiles(h.dataDir, secrets)).toEqual([]);
    // The webhook's secret is shown once, in the answer that registered it; nowhere else.
    const text = [...logLines, ...answers.filter((a) => !a.includes('"registerWebhook"'))].join('\n');
    for (const s of secrets) {
      const at = text.indexOf(s);
      expect(at, `a secret in a log line or an answer: …${text.slice(Math.max(0, at - 300), at + 40)}`).toBe(-1);
    }
    expect(logLines.length).toBeGreaterThan(0);
  });
});

describe('platform defaults from PROVIDERS_FILE, with custom endpoints left to the operator', () => {
  let h: Harness;
  const sendgridKey = `SG.${crypto.randomBytes(16).toString('base64url')}.${crypto.randomBytes(32).toString('base64url')}`;

  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'providers-file-'));
    const file = path.join(dir, 'providers.json');
    fs.writeFileSync(file, JSON.stringify([
      { name: 'platform-mail', channel: 'email', sendgrid: { apiKey: sendgridKey, from: 'notify@platform.example' } },
      { name: 'platform-sms', channel: 'sms', priority: 0, twilio: { accountSid: `AC${'a'.repeat(32)}`, authToken: 'b'.repeat(32), from: '+15005550006' } },
    ]));
    h = await startHarness({ env: { ...API_ONLY, SANDBOX: 'none', PROVIDERS_FILE: file } });
  });
  afterAll(() => h?.stop());

  it('serves the file as the platform defaults, masked, to the operator and to tenants', async () => {
    await h.app.settle();
    const listed = await h.ok<any>(h.operatorKey, `{ providers(tenantId: "platform") { owner name vendor channel endpoint credentials { hint } settings { key value } } }`);
    expect(listed.providers.map((p: any) => `${p.owner}/${p.name}:${p.vendor}:${p.channel}`)).toEqual(['platform/platform-mail:SENDGRID:EMAIL', 'platform/platform-sms:TWILIO:SMS']);
    expect(listed.providers.every((p: any) => p.endpoint === null)).toBe(true);
    expect(listed.providers[0].credentials.hint).toBe(`…${sendgridKey.slice(-4)}`);
    expect(JSON.stringify(listed)).not.toContain(sendgridKey);
    const admin = await registerTenant(h, 'tenant-a');
    const seen = await h.ok<any>(admin, `{ providers { owner name } }`);
    expect(seen.providers.map((p: any) => `${p.owner}/${p.name}`)).toEqual(['platform/platform-mail', 'platform/platform-sms']);
  });

  it("refuses a tenant's custom endpoint and a name the platform uses, storing nothing", async () => {
    const admin = await registerTenant(h, 'tenant-b');
    const head = await h.app.eventStore.headPosition();
    const twilioInput = { accountSid: `AC${'c'.repeat(32)}`, authToken: 'd'.repeat(32), from: '+15005550007' };
    const endpoint = await h.gql(admin, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in) { name } }`, {
      in: { name: 'mine', channel: 'SMS', endpoint: 'https://proxy.example', twilio: twilioInput },
    });
    expect(endpoint.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'endpoint' });
    const taken = await h.gql(admin, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in) { name } }`, {
      in: { name: 'platform-sms', channel: 'SMS', twilio: twilioInput },
    });
    expect(taken.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(await h.app.eventStore.headPosition()).toBe(head);
    const operatorOnTenant = await h.gql(h.operatorKey, `mutation($in: ConfigureProviderInput!) { configureProvider(input: $in, tenantId: "tenant-b") { name } }`, {
      in: { name: 'mine', channel: 'SMS', twilio: twilioInput },
    });
    expect(operatorOnTenant.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});
