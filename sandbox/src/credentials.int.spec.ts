import crypto from 'node:crypto';
import http2 from 'node:http2';
import https from 'node:https';
import apn from '@parse/node-apn';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  apnsProvider,
  firebaseApp,
  P256,
  pem,
  RSA,
  sendgridMail,
  smtpTransport,
  snsPublish,
  twilioClient,
} from './clients.test-support';
import { startSandbox, type Sandbox } from './index';

const DEVICE = 'ab'.repeat(32);

/** An APNs provider token (ES256) for the key. */
function apnsJwt(key: crypto.KeyObject, keyId: string, teamId: string): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg: 'ES256', kid: keyId })}.${enc({ iss: teamId, iat: Math.floor(Date.now() / 1000) })}`;
  return `${head}.${crypto.sign('sha256', Buffer.from(head), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

describe('provider sandbox: per-tenant credentials', () => {
  let sandbox: Sandbox;
  let agent: https.Agent;

  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${sandbox.control}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  /** A raw HTTPS POST to an instance. */
  const post = (instance: string, path: string, headers: Record<string, string>, body: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const ep = sandbox.endpoints[instance]!;
      const req = https.request({ host: ep.host, port: ep.port, agent, method: 'POST', path, headers }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });

  beforeAll(async () => {
    sandbox = await startSandbox();
    agent = new https.Agent({ keepAlive: true, ca: sandbox.ca });
  });
  afterAll(async () => {
    agent.destroy();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('registers the start credentials and lists them without secrets', async () => {
    const c = sandbox.credentials;
    const ids = (name: string) => sandbox.instance(name).credentials().map((x) => x.id);
    expect(ids('apns')).toEqual([`apns:${c.apns.teamId}.${c.apns.keyId}`]);
    expect(ids('twilio')).toEqual([`twilio:${c.twilio.accountSid}`]);
    expect(ids('sns')).toEqual([`sns:${c.sns.accessKeyId}`]);
    expect(ids('smtp')).toEqual([`smtp:${c.smtp.user}`]);
    expect(ids('sendgrid')).toEqual([expect.stringMatching(/^sendgrid:[0-9a-f]{12}$/)]);
    expect(ids('fcm-primary')).toEqual([expect.stringMatching(/^fcm:token:[0-9a-f]{12}$/)]);
    const listed = await control('GET', '/sendgrid/credentials');
    expect(listed.json).toEqual({ credentials: [{ id: ids('sendgrid')[0], type: 'sendgridApiKey', revoked: false }] });
    expect(JSON.stringify(listed.json)).not.toContain(c.sendgridApiKey);
  });

  it('APNs: a tenant key registered over the control API signs sends; revoked, Apple answers 403 InvalidProviderToken', async () => {
    const { privateKey, publicKey } = P256();
    const reg = await control('POST', '/apns/credentials', { keyId: 'TENANTKEY1', teamId: 'TENANTTEAM', publicKey: pem(publicKey) });
    expect(reg).toEqual({ status: 201, json: { id: 'apns:TENANTTEAM.TENANTKEY1' } });
    const provider = apnsProvider(sandbox, 'apns', { key: pem(privateKey), keyId: 'TENANTKEY1', teamId: 'TENANTTEAM' });
    try {
      const note = new apn.Notification({ alert: 'hello tenant', topic: 'com.tenant.app', expiry: 1_900_000_000 });
      const first = await provider.send(note, DEVICE);
      expect(first.failed).toEqual([]);
      expect(sandbox.instance('apns').accepted()).toEqual([
        expect.objectContaining({ address: DEVICE, text: 'hello tenant', credential: 'apns:TENANTTEAM.TENANTKEY1', expiration: 1_900_000_000 }),
      ]);

      expect(await control('DELETE', `/apns/credentials/${encodeURIComponent('apns:TENANTTEAM.TENANTKEY1')}`)).toEqual({
        status: 200,
        json: { id: 'apns:TENANTTEAM.TENANTKEY1', revoked: true },
      });
      // The SDK reuses its cached JWT: the revoked key must fail it all the same.
      const after = await provider.send(new apn.Notification({ alert: 'again', topic: 'com.tenant.app' }), DEVICE);
      expect(after.failed).toEqual([expect.objectContaining({ status: 403, response: { reason: 'InvalidProviderToken' } })]);
      expect(sandbox.instance('apns').count({ credential: 'apns:TENANTTEAM.TENANTKEY1' })).toBe(1);
      expect((await control('DELETE', `/apns/credentials/${encodeURIComponent('apns:TENANTTEAM.TENANTKEY1')}`)).status).toBe(404);
    } finally {
      provider.shutdown();
    }
  });

  it('APNs: a key of an unknown team, a key signed by another key, and a malformed apns-expiration are refused', async () => {
    const { privateKey, publicKey } = P256();
    sandbox.instance('apns').registerCredential({ keyId: 'K2', teamId: 'T2', publicKey: pem(publicKey) });
    const session = http2.connect(sandbox.endpoints.apns!.url, { ca: sandbox.ca });
    const ask = (jwt: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': `/3/device/${DEVICE}`, 'apns-topic': 't', authorization: `bearer ${jwt}`, ...headers });
        let status = 0;
        let body = '';
        req.on('response', (h) => (status = Number(h[':status'])));
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => resolve({ status, body }));
        req.on('error', reject);
        req.end('{"aps":{"alert":"x"}}');
      });
    try {
      expect(await ask(apnsJwt(privateKey, 'K2', 'OTHERTEAM'))).toEqual({ status: 403, body: '{"reason":"InvalidProviderToken"}' });
      expect(await ask(apnsJwt(P256().privateKey, 'K2', 'T2'))).toEqual({ status: 403, body: '{"reason":"InvalidProviderToken"}' });
      const jwt = apnsJwt(privateKey, 'K2', 'T2');
      expect(await ask(jwt, { 'apns-expiration': 'tomorrow' })).toEqual({ status: 400, body: '{"reason":"BadExpirationDate"}' });
      expect(await ask(jwt, { 'apns-expiration': '-5' })).toEqual({ status: 400, body: '{"reason":"BadExpirationDate"}' });
      expect((await ask(jwt, { 'apns-expiration': '0' })).status).toBe(200);
      expect(sandbox.instance('apns').accepted()).toEqual([expect.objectContaining({ credential: 'apns:T2.K2', expiration: 0 })]);
    } finally {
      session.close();
    }
  });

  it('FCM: firebase-admin with cert(serviceAccount) gets a token from the sandbox and sends as that account; revoked, both refuse', async () => {
    const { privateKey, publicKey } = RSA();
    const clientEmail = 'notify@tenant-a.iam.gserviceaccount.com';
    const id = sandbox.instance('fcm-primary').registerCredential({ clientEmail, publicKey: pem(publicKey), projectId: 'tenant-a' });
    expect(id).toBe(`fcm:${clientEmail}`);
    const a = firebaseApp(sandbox, 'fcm-primary', { projectId: 'tenant-a', clientEmail, privateKey: pem(privateKey) });
    try {
      const name = await a.send({
        token: 'tenant-device-1',
        notification: { body: 'from tenant a' },
        android: { ttl: 1500 },
        apns: { headers: { 'apns-expiration': '1900000000' } },
      });
      expect(name).toMatch(/^projects\/tenant-a\/messages\//);
      expect(sandbox.instance('fcm-primary').accepted()).toEqual([
        expect.objectContaining({ address: 'tenant-device-1', credential: id, ttlSeconds: 1.5, expiration: 1_900_000_000 }),
      ]);

      expect(sandbox.instance('fcm-primary').revokeCredential(id)).toBe(true);
      // The cached access token dies with the account's key.
      await expect(a.send({ token: 'tenant-device-1', notification: { body: 'again' } })).rejects.toMatchObject({
        code: 'messaging/third-party-auth-error',
      });
    } finally {
      await a.close();
    }
    // A fresh app cannot get a token at all: Google's invalid_grant.
    const b = firebaseApp(sandbox, 'fcm-primary', { projectId: 'tenant-a', clientEmail, privateKey: pem(privateKey) });
    try {
      await expect(b.send({ token: 'tenant-device-1', notification: { body: 'x' } })).rejects.toThrow(/invalid_grant/);
    } finally {
      await b.close();
    }
    expect(sandbox.instance('fcm-primary').count({ credential: id })).toBe(1);
  });

  it('FCM: the token endpoint verifies the assertion, and a token or account only sends for its own project', async () => {
    const { privateKey, publicKey } = RSA();
    sandbox.instance('fcm-primary').registerCredential({ clientEmail: 'sa@tenant-b.iam', publicKey: pem(publicKey), projectId: 'tenant-b' });
    const assertion = (key: crypto.KeyObject, claims: object) => {
      const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const head = `${enc({ alg: 'RS256', typ: 'JWT' })}.${enc(claims)}`;
      return `${head}.${crypto.sign('sha256', Buffer.from(head), key).toString('base64url')}`;
    };
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'sa@tenant-b.iam', aud: 'https://oauth2.googleapis.com/token', scope: 'x', iat: now, exp: now + 3600 };
    const token = (a: string, path = '/token') =>
      post('fcm-primary', path, { 'content-type': 'application/x-www-form-urlencoded' }, new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: a }).toString());

    const forged = await token(assertion(RSA().privateKey, claims));
    expect(forged.status).toBe(400);
    expect(JSON.parse(forged.body)).toMatchObject({ error: 'invalid_grant' });
    expect(JSON.parse((await token(assertion(privateKey, { ...claims, iss: 'nobody@x.iam' }))).body)).toMatchObject({ error: 'invalid_grant' });
    const good = await token(assertion(privateKey, claims), '/o/oauth2/token');
    expect(good.status).toBe(200);
    const issued = JSON.parse(good.body) as { access_token: string; expires_in: number; token_type: string };
    expect(issued).toEqual({ access_token: expect.stringMatching(/^ya29\./), expires_in: 3600, token_type: 'Bearer' });

    const send = (project: string, bearer: string) =>
      post('fcm-primary', `/v1/projects/${project}/messages:send`, { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' }, JSON.stringify({ message: { token: 'd1', notification: { body: 'b' } } }));
    expect((await send('tenant-b', issued.access_token)).status).toBe(200);
    expect((await send('notify-primary', issued.access_token)).status).toBe(403);
    expect((await send('tenant-b', sandbox.credentials.fcmAccessToken)).status).toBe(403);
    const unknown = await send('tenant-b', 'ya29.never-issued');
    expect(unknown.status).toBe(401);
    expect(JSON.parse(unknown.body).error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED' });
    expect(sandbox.instance('fcm-primary').accepted().map((m) => m.credential)).toEqual(['fcm:sa@tenant-b.iam']);
  });

  it('FCM: a fixed access token can be registered and revoked; malformed ttl and apns-expiration are INVALID_ARGUMENT', async () => {
    const id = sandbox.instance('fcm-secondary').registerCredential({ accessToken: 'ya29.tenant-c-token' });
    const app = firebaseApp(sandbox, 'fcm-secondary', { accessToken: 'ya29.tenant-c-token' });
    try {
      await app.send({ token: 'dev-c', notification: { body: 'c' }, android: { ttl: 598_000 } });
      expect(sandbox.instance('fcm-secondary').accepted()).toEqual([expect.objectContaining({ credential: id, ttlSeconds: 598 })]);
      const send = (message: object) =>
        post('fcm-secondary', `/v1/projects/${sandbox.endpoints['fcm-secondary']!.project}/messages:send`, { authorization: 'Bearer ya29.tenant-c-token' }, JSON.stringify({ message }));
      for (const bad of [
        { token: 'd', android: { ttl: '10 minutes' } },
        { token: 'd', android: { ttl: '-5s' } },
        { token: 'd', apns: { headers: { 'apns-expiration': 'soon' } } },
      ]) {
        const a = await send(bad);
        expect(a.status).toBe(400);
        expect(JSON.parse(a.body).error.status).toBe('INVALID_ARGUMENT');
      }
      sandbox.instance('fcm-secondary').revokeCredential(id);
      await expect(app.send({ token: 'dev-c', notification: { body: 'c' } })).rejects.toMatchObject({ code: 'messaging/third-party-auth-error' });
    } finally {
      await app.close();
    }
  });

  it('SendGrid: a tenant API key is attributed, its custom_args recorded; revoked, SendGrid answers 401', async () => {
    const reg = await control('POST', '/sendgrid/credentials', { apiKey: 'SG.tenant-d.secret' });
    expect(reg.status).toBe(201);
    const id = reg.json.id as string;
    expect(id).toBe(`sendgrid:${crypto.createHash('sha256').update('SG.tenant-d.secret').digest('hex').slice(0, 12)}`);
    const mail = sendgridMail(sandbox, 'sendgrid', 'SG.tenant-d.secret');
    const msg = {
      from: 'n@tenant-d.example',
      subject: 's',
      text: 'hello d',
      customArgs: { tenant: 'd' },
      personalizations: [{ to: [{ email: 'u1@example.com' }], customArgs: { deliveryId: 'n1:u1:e' } }],
    };
    const [res] = await mail.send(msg);
    expect(res.statusCode).toBe(202);
    expect(sandbox.instance('sendgrid').accepted({ credential: id })).toEqual([
      expect.objectContaining({ address: 'u1@example.com', deliveryId: 'n1:u1:e', customArgs: { tenant: 'd', deliveryId: 'n1:u1:e' } }),
    ]);
    expect((await control('GET', `/sendgrid/accepted?credential=${encodeURIComponent(id)}`)).json.count).toBe(1);
    expect((await control('DELETE', `/sendgrid/credentials/${encodeURIComponent(id)}`)).status).toBe(200);
    await expect(mail.send(msg)).rejects.toMatchObject({
      code: 401,
      response: { body: { errors: [{ message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null }] } },
    });
  });

  it('Twilio: auth token and API key accounts, ValidityPeriod recorded and checked; revoked, 20003', async () => {
    const tw = sandbox.instance('twilio');
    const accountSid = 'AC' + 'e'.repeat(32);
    const reg = await control('POST', '/twilio/credentials', { accountSid, authToken: 'tenant-e-token' });
    expect(reg.json).toEqual({ id: `twilio:${accountSid}` });
    const keyId = tw.registerCredential({ accountSid, apiKeySid: 'SK' + '1'.repeat(32), apiKeySecret: 'key-secret' });
    expect(keyId).toBe(`twilio:${accountSid}:SK${'1'.repeat(32)}`);

    const byToken = twilioClient(sandbox, 'twilio', { accountSid, authToken: 'tenant-e-token' });
    const byKey = twilioClient(sandbox, 'twilio', { accountSid, apiKeySid: 'SK' + '1'.repeat(32), apiKeySecret: 'key-secret' });
    const sms = { to: '+4915112345678', from: '+15005550006', body: 'hi e', validityPeriod: 600, statusCallback: 'https://127.0.0.1:1/none?deliveryId=n1' };
    const m = await byToken.messages.create(sms);
    expect(m.accountSid).toBe(accountSid);
    await byKey.messages.create({ ...sms, validityPeriod: 36000 });
    expect(tw.accepted()).toEqual([
      expect.objectContaining({ credential: `twilio:${accountSid}`, validityPeriod: 600, statusCallback: sms.statusCallback, deliveryId: 'n1' }),
      expect.objectContaining({ credential: keyId, validityPeriod: 36000 }),
    ]);
    for (const validityPeriod of [0, 36001]) {
      await expect(byToken.messages.create({ ...sms, validityPeriod })).rejects.toMatchObject({ status: 400, code: 21624 });
    }
    // Another account's path with this account's key: not this key's account.
    const wrongPath = twilioClient(sandbox, 'twilio', { accountSid: sandbox.credentials.twilio.accountSid, apiKeySid: 'SK' + '1'.repeat(32), apiKeySecret: 'key-secret' });
    await expect(wrongPath.messages.create(sms)).rejects.toMatchObject({ status: 401, code: 20003 });

    tw.revokeCredential(`twilio:${accountSid}`);
    await expect(byToken.messages.create(sms)).rejects.toMatchObject({
      status: 401,
      code: 20003,
      message: 'Authenticate',
      moreInfo: 'https://www.twilio.com/docs/errors/20003',
    });
    await byKey.messages.create(sms); // the API key is a credential of its own
    tw.revokeCredential(keyId);
    await expect(byKey.messages.create(sms)).rejects.toMatchObject({ status: 401, code: 20003 });
    expect(tw.count({ credential: keyId })).toBe(2);
  });

  it('SNS: a tenant access key is verified by its SigV4 signature; a wrong secret or a revoked key is 403', async () => {
    const sns = sandbox.instance('sns');
    const id = sns.registerCredential({ accessKeyId: 'AKIATENANTF', secretAccessKey: 'tenant-f-secret', region: 'eu-west-1' });
    expect(id).toBe('sns:AKIATENANTF');
    const good = snsPublish(sandbox, 'sns', { accessKeyId: 'AKIATENANTF', secretAccessKey: 'tenant-f-secret' });
    const wrong = snsPublish(sandbox, 'sns', { accessKeyId: 'AKIATENANTF', secretAccessKey: 'not-the-secret' });
    try {
      expect((await good.publish('+4915112345678', 'hi f')).MessageId).toBeDefined();
      expect(sns.accepted()).toEqual([expect.objectContaining({ credential: id, text: 'hi f' })]);
      await expect(wrong.publish('+4915112345678', 'x')).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
      sns.revokeCredential(id);
      await expect(good.publish('+4915112345678', 'x')).rejects.toMatchObject({
        name: 'InvalidClientTokenId',
        message: 'The security token included in the request is invalid.',
        $metadata: { httpStatusCode: 403 },
      });
      expect(sns.count()).toBe(1);
    } finally {
      good.close();
      wrong.close();
    }
  });

  it('SMTP: a tenant login is attributed; revoked, 535 at login, and at the next MAIL FROM of an open connection', async () => {
    const smtp = sandbox.instance('smtp');
    const id = smtp.registerCredential({ user: 'tenant-g', pass: 'pw-g' });
    const pooled = smtpTransport(sandbox, 'smtp', { user: 'tenant-g', pass: 'pw-g' }, true);
    const mail = { from: 'n@g.example', to: 'u@example.com', subject: 's', text: 'hi g' };
    try {
      await pooled.sendMail(mail);
      expect(smtp.accepted()).toEqual([expect.objectContaining({ credential: id, address: 'u@example.com' })]);
      smtp.revokeCredential(id);
      await expect(pooled.sendMail(mail)).rejects.toMatchObject({ responseCode: 535, response: '535 5.7.8 Authentication credentials invalid' });
      const fresh = smtpTransport(sandbox, 'smtp', { user: 'tenant-g', pass: 'pw-g' });
      await expect(fresh.sendMail(mail)).rejects.toMatchObject({ responseCode: 535 });
      fresh.close();
      expect(smtp.count({ credential: id })).toBe(1);
    } finally {
      pooled.close();
    }
  });

  it('refuses credentials of the wrong shape, and reset() brings back the start set only', async () => {
    expect((await control('POST', '/apns/credentials', { apiKey: 'x' })).status).toBe(400);
    expect((await control('POST', '/apns/credentials', { keyId: 'k', teamId: 't', publicKey: pem(RSA().publicKey) })).status).toBe(400);
    expect((await control('POST', '/fcm-primary/credentials', { clientEmail: 'a@b', publicKey: pem(P256().publicKey) })).status).toBe(400);
    expect(() => sandbox.instance('twilio').registerCredential({ user: 'x', pass: 'y' })).toThrow(TypeError);

    const start = sandbox.instance('smtp').credentials();
    sandbox.instance('smtp').registerCredential({ user: 'extra', pass: 'p' });
    sandbox.instance('smtp').revokeCredential(start[0]!.id);
    expect(sandbox.instance('smtp').credentials()).toEqual([
      { id: 'smtp:extra', type: 'smtpLogin', revoked: false },
      { id: start[0]!.id, type: 'smtpLogin', revoked: true },
    ]);
    expect((await control('POST', '/reset')).status).toBe(200);
    expect(sandbox.instance('smtp').credentials()).toEqual(start);
  });
});
