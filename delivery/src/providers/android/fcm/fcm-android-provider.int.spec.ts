import crypto from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type tls from 'node:tls';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { FcmAndroidProvider } from './fcm-android-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

const token = (n: number) => `tok${n}:APA91b${'x'.repeat(40)}`;

describe('FcmAndroidProvider (firebase-admin sendEach → sandbox FCM HTTP v1)', () => {
  let sandbox: Sandbox;
  let primary: FcmAndroidProvider;
  let secondary: FcmAndroidProvider;

  const make = (name: 'fcm-primary' | 'fcm-secondary', timeoutMs = 5000) => {
    const ep = sandbox.endpoints[name]!;
    return new FcmAndroidProvider({
      name,
      projectId: ep.project!,
      credentials: { type: 'accessToken', accessToken: sandbox.credentials.fcmAccessToken },
      redirect: { host: ep.host, port: ep.port, ca: sandbox.ca },
      quotaPerSecond: 100,
      quotaRetryAfterMs: 1000,
      timeoutMs,
    });
  };

  beforeAll(async () => {
    sandbox = await startSandbox({
      instances: [
        { name: 'fcm-primary', kind: 'fcm', project: 'notify-primary' },
        { name: 'fcm-secondary', kind: 'fcm', project: 'notify-secondary' },
      ],
    });
    primary = make('fcm-primary');
    secondary = make('fcm-secondary');
  });
  afterAll(async () => {
    await Promise.all([primary.close(), secondary.close()]);
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('delivers with the delivery id as android.collapse_key', async () => {
    const [out] = await primary.send([{ deliveryId: 'n1:u1:d1', address: token(1), text: 'Hello Android', expiresAt: EXPIRES }]);
    expect(out).toMatchObject({ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/^projects\/notify-primary\/messages\//) });
    expect(sandbox.instance('fcm-primary').accepted()).toEqual([
      expect.objectContaining({ address: token(1), text: 'Hello Android', collapseId: 'n1:u1:d1', deliveryId: 'n1:u1:d1' }),
    ]);
    expect(sandbox.instance('fcm-secondary').count()).toBe(0);
  });

  it('sends a full batch of 500 through one sendEach', async () => {
    expect(primary.maxBatch).toBe(500);
    const msgs = Array.from({ length: 500 }, (_, i) => ({ deliveryId: `b${i}`, address: token(i), text: `m${i}`, expiresAt: EXPIRES }));
    const out = await primary.send(msgs);
    expect(out.map((o) => o.deliveryId)).toEqual(msgs.map((m) => m.deliveryId));
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('fcm-primary').count()).toBe(500);
    await expect(primary.send([...msgs, msgs[0]!])).rejects.toThrow(RangeError);
  });

  it('maps UNREGISTERED and an invalid token to permanent + invalidDevice, per message', async () => {
    sandbox.instance('fcm-primary').addPermanentFailures([token(2)]);
    const out = await primary.send([
      { deliveryId: 'ok', address: token(1), text: 't', expiresAt: EXPIRES },
      { deliveryId: 'gone', address: token(2), text: 't', expiresAt: EXPIRES },
      { deliveryId: 'bad', address: 'bad-token-0123456789012345678901234567890', text: 't', expiresAt: EXPIRES },
    ]);
    expect(out).toEqual([
      expect.objectContaining({ deliveryId: 'ok', outcome: 'accepted' }),
      expect.objectContaining({ deliveryId: 'gone', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('registration-token-not-registered') }),
      expect.objectContaining({ deliveryId: 'bad', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('invalid-argument') }),
    ]);
  });

  it('maps QUOTA_EXCEEDED (429) to transient with retryAfterMs, leaving the rest accepted', async () => {
    sandbox.instance('fcm-primary').setFaults({ rateLimitPerSecond: 5, rateLimitBurst: 5 });
    const msgs = Array.from({ length: 8 }, (_, i) => ({ deliveryId: `q${i}`, address: token(i), text: 't', expiresAt: EXPIRES }));
    const out = await primary.send(msgs);
    expect(out.filter((o) => o.outcome === 'accepted')).toHaveLength(5);
    const limited = out.filter((o) => o.outcome === 'transient');
    expect(limited).toHaveLength(3);
    expect(limited[0]).toMatchObject({ retryAfterMs: 1000, reason: expect.stringContaining('message-rate-exceeded') });
  });

  it('rejects with transient outcomes when the whole batch meets an outage; the second project is unaffected', async () => {
    // Retry-After above 60 s makes firebase-admin give up at once instead of retrying 4 times.
    sandbox.instance('fcm-primary').setFaults({ outage: true, retryAfterSeconds: 120 });
    const msgs = [1, 2, 3].map((i) => ({ deliveryId: `o${i}`, address: token(i), text: 't', expiresAt: EXPIRES }));
    const err = await primary.send(msgs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual(
      msgs.map((m) => expect.objectContaining({ deliveryId: m.deliveryId, outcome: 'transient', reason: expect.stringContaining('server-unavailable') })),
    );
    const out = await secondary.send(msgs);
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('fcm-secondary').accepted()[0]).toMatchObject({ id: expect.stringMatching(/^projects\/notify-secondary\//) });
  });

  it('maps INTERNAL (500) to a transient outcome inside a partly accepted batch', async () => {
    sandbox.instance('fcm-primary').setFaults({ errorRate: 0.5, retryAfterSeconds: 120 });
    const msgs = Array.from({ length: 40 }, (_, i) => ({ deliveryId: `e${i}`, address: token(i), text: 't', expiresAt: EXPIRES }));
    const out = await primary.send(msgs);
    const failed = out.filter((o) => o.outcome === 'transient');
    expect(failed.length).toBeGreaterThan(0);
    expect(out.some((o) => o.outcome === 'accepted')).toBe(true);
    for (const f of failed) expect(f).toMatchObject({ reason: expect.stringMatching(/internal-error|server-unavailable/) });
  });

  it("does not let firebase-admin retry a 503: one request, and its Retry-After is reported for the router's backoff", async () => {
    const inst = sandbox.instance('fcm-primary');
    inst.setFaults({ outage: true, retryAfterSeconds: 3 });
    const started = Date.now();
    const err = await primary.send([{ deliveryId: 'r1', address: token(1), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual([expect.objectContaining({ outcome: 'transient', retryAfterMs: 3000 })]);
    expect((err as ProviderUnavailableError).outcomes[0]).not.toHaveProperty('maybeDelivered');
    expect(inst.stats()).toMatchObject({ requests: 1, serverErrors: 1, accepted: 0 });
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('tells the caller of each answer as it comes, before the whole sendEach settles (the stall watch hears the provider alive)', async () => {
    sandbox.instance('fcm-primary').setFaults({ latencyMs: 10, jitterMs: 800 });
    const started = performance.now();
    const answers: number[] = [];
    const outcomes = await primary.send(
      Array.from({ length: 20 }, (_, i) => ({ deliveryId: `a${i}`, address: token(i), text: 't', expiresAt: EXPIRES })),
      { onAnswer: () => answers.push(performance.now() - started) },
    );
    const settled = performance.now() - started;
    expect(outcomes.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(answers).toHaveLength(20);
    expect(answers[0]!).toBeLessThan(settled - 300);
  });

  it('gives up on a hung sandbox after its own timeout', async () => {
    const quick = make('fcm-primary', 400);
    try {
      sandbox.instance('fcm-primary').setFaults({ hang: true });
      const started = Date.now();
      const err = await quick.send([{ deliveryId: 'h', address: token(1), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as Error).message).toMatch(/no answer within 400 ms/);
      // The request went out: a retry may deliver it twice.
      expect((err as ProviderUnavailableError).outcomes[0]).toMatchObject({ outcome: 'transient', maybeDelivered: true });
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await quick.close();
    }
  });

  it('reports a wrong access token as rejected credentials (the integration, not the device)', async () => {
    const ep = sandbox.endpoints['fcm-primary']!;
    const wrong = new FcmAndroidProvider({
      name: 'fcm-wrong',
      projectId: ep.project!,
      credentials: { type: 'accessToken', accessToken: 'ya29.wrong' },
      redirect: { host: ep.host, port: ep.port, ca: sandbox.ca },
    });
    try {
      const err = await wrong.send([{ deliveryId: 'a', address: token(1), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as ProviderUnavailableError).outcomes).toEqual([
        { deliveryId: 'a', outcome: 'transient', reason: 'UNAUTHENTICATED', credentialsRejected: true },
      ]);
      expect(sandbox.instance('fcm-primary').stats().unauthorized).toBe(1);
    } finally {
      await wrong.close();
    }
  });

  it('reports a project the credentials may not send for as rejected credentials', async () => {
    // The sandbox's fcm-primary serves notify-primary: another project id is PERMISSION_DENIED.
    const ep = sandbox.endpoints['fcm-primary']!;
    const other = new FcmAndroidProvider({
      name: 'fcm-other-project',
      projectId: 'notify-someone-else',
      credentials: { type: 'accessToken', accessToken: sandbox.credentials.fcmAccessToken },
      redirect: { host: ep.host, port: ep.port, ca: sandbox.ca },
    });
    try {
      const err = await other.send([{ deliveryId: 'p', address: token(1), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect((err as ProviderUnavailableError).outcomes).toEqual([
        { deliveryId: 'p', outcome: 'transient', reason: 'PERMISSION_DENIED', credentialsRejected: true },
      ]);
    } finally {
      await other.close();
    }
  });

  it('passes the time left as android.ttl, never below 0', async () => {
    const before = Date.now();
    const out = await primary.send([
      { deliveryId: 'ttl1', address: token(1), text: 't', expiresAt: before + 90_000 },
      { deliveryId: 'ttl2', address: token(2), text: 't', expiresAt: before - 5_000 },
    ]);
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    const inst = sandbox.instance('fcm-primary');
    const [first] = inst.accepted({ deliveryId: 'ttl1' });
    expect(first!.ttlSeconds).toBeGreaterThan(88);
    expect(first!.ttlSeconds).toBeLessThanOrEqual(90);
    expect(inst.accepted({ deliveryId: 'ttl2' })[0]!.ttlSeconds).toBe(0);
  });

  it('signs in with a service account through the redirect (both Google hosts), and a revoked one is rejected credentials', async () => {
    const ep = sandbox.endpoints['fcm-primary']!;
    const inst = sandbox.instance('fcm-primary');
    const keys = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const clientEmail = 'sender@tenant-project.iam.gserviceaccount.com';
    const id = inst.registerCredential({ clientEmail, publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), projectId: 'tenant-project' });
    const fcm = new FcmAndroidProvider({
      name: 'tenant-fcm',
      projectId: 'tenant-project',
      credentials: {
        type: 'serviceAccount',
        serviceAccount: { projectId: 'tenant-project', clientEmail, privateKey: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
      },
      redirect: { host: ep.host, port: ep.port, ca: sandbox.ca },
    });
    try {
      const [out] = await fcm.send([{ deliveryId: 'sa', address: token(1), text: 't', expiresAt: EXPIRES }]);
      expect(out).toMatchObject({ outcome: 'accepted', providerMessageId: expect.stringMatching(/^projects\/tenant-project\//) });
      expect(inst.count({ credential: id })).toBe(1);
      inst.revokeCredential(id);
      const err = await fcm.send([{ deliveryId: 'sa2', address: token(1), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect((err as ProviderUnavailableError).outcomes).toEqual([
        { deliveryId: 'sa2', outcome: 'transient', reason: 'UNAUTHENTICATED', credentialsRejected: true },
      ]);
    } finally {
      await fcm.close();
    }
  });

  it('keeps the token out of the reason when FCM refuses it', async () => {
    const bad = 'bad-token-secret-0123456789012345678901234567890';
    const [out] = await primary.send([{ deliveryId: 'b', address: bad, text: 't', expiresAt: EXPIRES }]);
    expect(out).toEqual({ deliveryId: 'b', outcome: 'permanent', invalidDevice: true, reason: 'fcm messaging/invalid-argument: invalid registration token' });
  });
});

/*
 * A service account behind a redirect: firebase-admin's cert(account, agent) fetches its tokens
 * from oauth2.googleapis.com, so both Google hosts must reach the endpoint. A local HTTPS server
 * with a certificate for both names stands in for Google (the token exchange, RS256-verified
 * against the account's key, and the send); it records the TLS server name of each connection.
 */
describe('FcmAndroidProvider with a service account behind a redirect', () => {
  const keys = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const account = {
    projectId: 'tenant-project',
    clientEmail: 'sender@tenant-project.iam.gserviceaccount.com',
    privateKey: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKeyId: 'f'.repeat(40),
  };
  const ISSUED = 'ya29.issued-for-the-service-account';
  let server: https.Server;
  let ca: string;
  let port: number;
  const serverNames: string[] = [];
  const sends: unknown[] = [];
  const assertions: { header: Record<string, unknown>; claims: Record<string, unknown> }[] = [];

  const verifyJwt = (jwt: string): boolean => {
    const [h, c, sig] = jwt.split('.');
    if (!h || !c || !sig) return false;
    const ok = crypto.verify('RSA-SHA256', Buffer.from(`${h}.${c}`), keys.publicKey, Buffer.from(sig, 'base64url'));
    if (ok) assertions.push({ header: JSON.parse(Buffer.from(h, 'base64url').toString()), claims: JSON.parse(Buffer.from(c, 'base64url').toString()) });
    return ok;
  };

  beforeAll(async () => {
    const names = ['fcm.googleapis.com', 'oauth2.googleapis.com'];
    const root = await generate([{ name: 'commonName', value: 'test Google CA' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [
        { name: 'basicConstraints', cA: true, critical: true },
        { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
      ],
    });
    const leaf = await generate([{ name: 'commonName', value: names[0]! }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      ca: { key: root.private, cert: root.cert },
      extensions: [
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2 as const, value })) },
      ],
    });
    ca = root.cert;
    server = https.createServer({ key: leaf.private, cert: leaf.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        const json = (status: number, payload: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(payload));
        };
        if (req.url === '/token') {
          const form = new URLSearchParams(body);
          if (!verifyJwt(form.get('assertion') ?? '')) return json(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
          return json(200, { access_token: ISSUED, expires_in: 3600, token_type: 'Bearer' });
        }
        if (req.url === '/v1/projects/tenant-project/messages:send') {
          if (req.headers.authorization !== `Bearer ${ISSUED}`) return json(401, { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } });
          sends.push(JSON.parse(body));
          return json(200, { name: `projects/tenant-project/messages/${sends.length}` });
        }
        json(404, { error: { code: 404, message: 'not found', status: 'NOT_FOUND' } });
      });
    });
    server.on('secureConnection', (s: tls.TLSSocket) => serverNames.push(String((s as tls.TLSSocket & { servername?: string }).servername)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const make = (privateKey: string) =>
    new FcmAndroidProvider({
      name: 'tenant-fcm',
      projectId: account.projectId,
      credentials: { type: 'serviceAccount', serviceAccount: { ...account, privateKey } },
      redirect: { host: '127.0.0.1', port, ca },
      timeoutMs: 5000,
    });

  it('fetches its token through the redirect (servername oauth2.googleapis.com) and sends with it', async () => {
    const fcm = make(account.privateKey);
    try {
      const out = await fcm.send([{ deliveryId: 'sa1', address: token(1), text: 'via a service account', expiresAt: EXPIRES }]);
      expect(out).toEqual([{ deliveryId: 'sa1', outcome: 'accepted', providerMessageId: 'projects/tenant-project/messages/1' }]);
      expect(new Set(serverNames)).toEqual(new Set(['oauth2.googleapis.com', 'fcm.googleapis.com']));
      expect(assertions[0]).toMatchObject({
        header: { alg: 'RS256', kid: account.privateKeyId },
        claims: { iss: account.clientEmail, aud: 'https://oauth2.googleapis.com/token', scope: expect.stringContaining('firebase.messaging') },
      });
      expect(sends).toEqual([{ message: expect.objectContaining({ token: token(1), android: expect.objectContaining({ ttl: expect.stringMatching(/^\d+(\.\d+)?s$/) }) }) }]);
    } finally {
      await fcm.close();
    }
  });

  it('reports a key the token endpoint refuses as rejected credentials (invalid_grant)', async () => {
    const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const fcm = make(other);
    try {
      const err = await fcm.send([{ deliveryId: 'sa2', address: token(1), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as ProviderUnavailableError).outcomes).toEqual([
        { deliveryId: 'sa2', outcome: 'transient', reason: 'invalid_grant', credentialsRejected: true },
      ]);
    } finally {
      await fcm.close();
    }
  });
});
