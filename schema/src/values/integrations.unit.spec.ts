import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../errors';
import type { IntegrationInput, IntegrationSecret, ParsedIntegration } from '../integrations';
import { fingerprintOf, hintOf, parseIntegrationInput } from './integrations';

const pem = (k: crypto.KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const ecKey = (curve: string) => pem(crypto.generateKeyPairSync('ec', { namedCurve: curve }).privateKey);
const P256 = ecKey('P-256');
const P384 = ecKey('P-384');
const RSA = pem(crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
const MALFORMED_PEM = '-----BEGIN PRIVATE KEY-----\nTUFMRk9STUVELXNlY3JldC1ib2R5LTEyMzQ=\n-----END PRIVATE KEY-----\n';
const spki = (k: crypto.KeyObject) => k.export({ type: 'spki', format: 'der' }).toString('base64');
const WEBHOOK_KEY = spki(crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
/** A self-signed certificate (EC P-256, CN notify-test-ca): X509Certificate only has to parse it. */
const CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBhjCCAS2gAwIBAgIUVE4SH8FRPDoOzU21Vd2oe2HRQe4wCgYIKoZIzj0EAwIw
GTEXMBUGA1UEAwwObm90aWZ5LXRlc3QtY2EwHhcNMjYxMjA0MTMyMDQ3WhcNMzYx
MjAxMTMyMDQ3WjAZMRcwFQYDVQQDDA5ub3RpZnktdGVzdC1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABDzLhKrCZtvmDBk8A1O+0B7H74nzFhFkRsJ/vWTKeDQB
/0Ick6ReTEJIpTALxOJOCbVDRH4cu+5yOQHlbDCiruqjUzBRMB0GA1UdDgQWBBTI
kdDKCIJrnBHL23AuG2GzF/adoTAfBgNVHSMEGDAWgBTIkdDKCIJrnBHL23AuG2Gz
F/adoTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0cAMEQCIBdUuEq+EgP2
1oMxAGpPxcElxIfDwmlAZOugXCRgdypXAiBBJt2UjVtf4kXF82SINsxxQQCY1gEA
KaMKkY0EqLqIQA==
-----END CERTIFICATE-----`;
const CA_BODY = CA_PEM.split('\n').slice(1, -1).join('\n');

const SA = {
  type: 'service_account',
  project_id: 'notify-prod-1',
  private_key_id: '0123456789abcdef0123456789abcdef01234567',
  private_key: RSA,
  client_email: 'fcm-sender@notify-prod-1.iam.gserviceaccount.com',
  client_id: '1234567890',
  token_uri: 'https://oauth2.googleapis.com/token',
};
const SG_KEY = 'SG.AbCdEfGhIjKlMnOpQrStUv.wXyZ0123456789_-abcdefghijklmnopqrstuvwxyzABCD';
const ACCOUNT = 'AC' + 'a1'.repeat(16);
const AUTH_TOKEN = 'f0'.repeat(16);
const API_KEY_SID = 'SK' + 'b2'.repeat(16);
const API_KEY_SECRET = 'aVeryLongApiKeySecretValue42';
const MG = 'MG' + 'c3'.repeat(16);
const AWS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';

const inputs = {
  apns: { name: 'apns-main', channel: 'ios', apns: { key: P256, keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.example.app' } },
  fcm: { name: 'fcm-main', channel: 'android', priority: 1, fcm: { serviceAccount: JSON.stringify(SA) } },
  sendgrid: {
    name: 'sendgrid',
    channel: 'email',
    quotaPerSecond: 100,
    sendgrid: { apiKey: SG_KEY, from: 'notify@example.com', replyTo: 'support@example.com', webhookPublicKey: WEBHOOK_KEY },
  },
  smtp: { name: 'smtp', channel: 'email', smtp: { url: 'smtp://mailer%40example.com:p%3Ass-w0rd@Mail.Example.com', from: 'notify@example.com' } },
  twilio: { name: 'twilio', channel: 'sms', twilio: { accountSid: ACCOUNT, authToken: AUTH_TOKEN, from: '+15005550006' } },
  sns: { name: 'sns', channel: 'sms', sns: { region: 'eu-west-1', accessKeyId: AWS_KEY, secretAccessKey: AWS_SECRET, senderId: 'Notify' } },
} satisfies Record<string, IntegrationInput>;

const parse = (input: IntegrationInput, allowEndpoint = false): ParsedIntegration => parseIntegrationInput(input, { allowEndpoint });

/** Refused with BAD_USER_INPUT naming `field`; the message quotes none of `secrets`. */
const refuses = (input: IntegrationInput, field: string, opts: { message?: RegExp; secrets?: string[]; allowEndpoint?: boolean } = {}) => {
  let thrown: unknown;
  try {
    parse(input, opts.allowEndpoint ?? false);
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected a refusal naming ${field}`).toBeInstanceOf(DomainError);
  const e = thrown as DomainError;
  expect(e.code).toBe('BAD_USER_INPUT');
  expect(e.field).toBe(field);
  expect(e.message.startsWith(`${field}: `)).toBe(true);
  if (opts.message) expect(e.message).toMatch(opts.message);
  for (const s of opts.secrets ?? []) {
    for (const piece of secretPieces(s)) expect(e.message).not.toContain(piece);
  }
};

/** A secret and its distinctive parts (a PEM's body lines), any of which would leak it. */
const secretPieces = (s: string): string[] => [s, ...s.split('\n').filter((l) => l.length >= 12 && !l.startsWith('-----'))];

const withVendor = <K extends keyof typeof inputs>(k: K, patch: Record<string, unknown>): IntegrationInput => ({
  ...inputs[k],
  [k]: { ...(inputs[k] as unknown as Record<string, Record<string, unknown>>)[k], ...patch },
});

const secretStrings = (secret: IntegrationSecret): string[] =>
  Object.entries(secret)
    .filter(([k, v]) => k !== 'vendor' && typeof v === 'string')
    .flatMap(([, v]) => secretPieces(v as string));

describe('parseIntegrationInput: a valid input per vendor', () => {
  it('APNs: ids and topic readable, the .p8 key secret; production by default', () => {
    const { spec, secret } = parse(inputs.apns);
    expect(spec).toEqual({
      name: 'apns-main',
      channel: 'ios',
      priority: 0,
      settings: { vendor: 'apns', keyId: 'ABC123DEFG', teamId: 'TEAM123456', topic: 'com.example.app', environment: 'production' },
      quotaPerSecond: null,
      endpoint: null,
      ca: null,
    });
    expect(secret).toEqual({ vendor: 'apns', key: P256.trim() });
    expect(parse(withVendor('apns', { environment: 'development', topic: 'com.example.app.voip' })).spec.settings).toMatchObject({
      environment: 'development',
      topic: 'com.example.app.voip',
    });
  });

  it('FCM: a service account given as JSON text or as an object', () => {
    const { spec, secret } = parse(inputs.fcm);
    expect(spec).toMatchObject({ name: 'fcm-main', channel: 'android', priority: 1 });
    expect(spec.settings).toEqual({ vendor: 'fcm', projectId: 'notify-prod-1', clientEmail: SA.client_email });
    expect(secret).toEqual({ vendor: 'fcm', privateKey: RSA.trim(), privateKeyId: SA.private_key_id });
    const asObject = parse({ ...inputs.fcm, channel: 'ios', fcm: { serviceAccount: { ...SA, private_key_id: undefined } } });
    expect(asObject.spec.channel).toBe('ios');
    expect(asObject.secret).toEqual({ vendor: 'fcm', privateKey: RSA.trim(), privateKeyId: null });
  });

  it('FCM: a fixed access token only as an operator option', () => {
    const input = { name: 'fcm-sandbox', channel: 'android', fcm: { projectId: 'notify-primary', accessToken: 'ya29.sandbox-token' } };
    const { spec, secret } = parse(input, true);
    expect(spec.settings).toEqual({ vendor: 'fcm', projectId: 'notify-primary', clientEmail: null });
    expect(secret).toEqual({ vendor: 'fcm', accessToken: 'ya29.sandbox-token' });
    refuses(input, 'fcm.accessToken', { message: /operator option/, secrets: ['ya29.sandbox-token'] });
  });

  it('SendGrid: sender, reply-to and webhook key readable, the API key secret', () => {
    const { spec, secret } = parse(inputs.sendgrid);
    expect(spec).toMatchObject({ quotaPerSecond: 100 });
    expect(spec.settings).toEqual({ vendor: 'sendgrid', from: 'notify@example.com', replyTo: 'support@example.com', webhookPublicKey: WEBHOOK_KEY });
    expect(secret).toEqual({ vendor: 'sendgrid', apiKey: SG_KEY });
    expect(parse(withVendor('sendgrid', { replyTo: undefined, webhookPublicKey: null })).spec.settings).toMatchObject({ replyTo: null, webhookPublicKey: null });
  });

  it('SMTP: host, port and TLS mode readable; user and password (percent-decoded) secret', () => {
    const { spec, secret } = parse(inputs.smtp);
    expect(spec.settings).toEqual({ vendor: 'smtp', host: 'mail.example.com', port: 587, secure: false, from: 'notify@example.com' });
    expect(secret).toEqual({ vendor: 'smtp', user: 'mailer@example.com', pass: 'p:ss-w0rd' });
    expect(parse(withVendor('smtp', { url: 'smtps://relay.example.net' }))).toMatchObject({
      spec: { settings: { host: 'relay.example.net', port: 465, secure: true } },
      secret: { vendor: 'smtp', user: null, pass: null },
    });
    expect(parse(withVendor('smtp', { url: 'smtp://u:p@[::1]:2525' })).spec.settings).toMatchObject({ host: '::1', port: 2525 });
  });

  it('Twilio: an auth token and a number, or an API key and a messaging service', () => {
    const { spec, secret } = parse(inputs.twilio);
    expect(spec.settings).toEqual({ vendor: 'twilio', accountSid: ACCOUNT, from: '+15005550006', messagingServiceSid: null });
    expect(secret).toEqual({ vendor: 'twilio', authToken: AUTH_TOKEN });
    const byKey = parse({ ...inputs.twilio, twilio: { accountSid: ACCOUNT, apiKeySid: API_KEY_SID, apiKeySecret: API_KEY_SECRET, messagingServiceSid: MG } });
    expect(byKey.spec.settings).toEqual({ vendor: 'twilio', accountSid: ACCOUNT, from: null, messagingServiceSid: MG });
    expect(byKey.secret).toEqual({ vendor: 'twilio', apiKeySid: API_KEY_SID, apiKeySecret: API_KEY_SECRET });
  });

  it('SNS: region and sender id readable, the access key secret', () => {
    const { spec, secret } = parse(inputs.sns);
    expect(spec.settings).toEqual({ vendor: 'sns', region: 'eu-west-1', senderId: 'Notify' });
    expect(secret).toEqual({ vendor: 'sns', accessKeyId: AWS_KEY, secretAccessKey: AWS_SECRET });
    expect(parse({ ...inputs.sns, sns: { ...inputs.sns.sns, region: 'us-gov-west-1', senderId: undefined } }).spec.settings).toMatchObject({ senderId: null });
  });

  it.each(Object.keys(inputs) as (keyof typeof inputs)[])('%s: nothing of the secret is in the spec', (vendor) => {
    const { spec, secret } = parse(inputs[vendor]);
    const text = JSON.stringify(spec);
    expect(secret.vendor).toBe(vendor);
    for (const piece of secretStrings(secret)) expect(text).not.toContain(piece);
  });

  it('an endpoint (as { url } or the URL) and a CA when the operator allows them', () => {
    const ca = CA_PEM;
    const { spec } = parse({ ...inputs.sendgrid, endpoint: { url: 'https://127.0.0.1:8443' }, ca }, true);
    expect(spec).toMatchObject({ endpoint: { url: 'https://127.0.0.1:8443' }, ca: ca.trim() });
    expect(parse({ ...inputs.twilio, endpoint: 'http://relay.internal:8080' }, true).spec.endpoint).toEqual({ url: 'http://relay.internal:8080' });
    expect(parse({ ...inputs.smtp, endpoint: { url: 'smtps://127.0.0.1:2465' } }, true).spec.endpoint).toEqual({ url: 'smtps://127.0.0.1:2465' });
    // SMTP names its own server: a CA for it needs no endpoint.
    expect(parse({ ...inputs.smtp, ca }, true).spec.ca).toBe(ca.trim());
  });
});

describe('parseIntegrationInput: each rule refuses, naming the field', () => {
  it('name, vendor and channel', () => {
    refuses({ ...inputs.apns, name: 'has space' }, 'name');
    refuses({ ...inputs.apns, name: 'ops@example.com' }, 'name');
    refuses({ name: 'x', channel: 'ios' }, 'vendor', { message: /^vendor: give exactly one of apns, fcm, sendgrid, smtp, twilio, sns$/ });
    refuses({ ...inputs.apns, fcm: inputs.fcm.fcm }, 'vendor');
    refuses({ ...inputs.apns, channel: 'android' }, 'channel', { message: /apns serves ios, not android/ });
    refuses({ ...inputs.twilio, channel: 'email' }, 'channel');
    refuses({ ...inputs.fcm, channel: 'fax' }, 'channel');
    refuses({ ...inputs.apns, apns: 'not an object' }, 'apns', { message: /expected an object/ });
    refuses(withVendor('apns', { keyID: 'ABC123DEFG' }), 'apns.keyID', { message: /unknown field/ });
  });

  it('priority 0..100 and quotaPerSecond 1..1,000,000, integers', () => {
    for (const p of [-1, 101, 1.5, '1']) refuses({ ...inputs.twilio, priority: p }, 'priority', { message: /from 0 to 100/ });
    expect(parse({ ...inputs.twilio, priority: 100 }).spec.priority).toBe(100);
    for (const q of [0, 1_000_001, 2.5]) refuses({ ...inputs.twilio, quotaPerSecond: q }, 'quotaPerSecond', { message: /from 1 to 1,000,000/ });
    expect(parse({ ...inputs.twilio, quotaPerSecond: 1_000_000 }).spec.quotaPerSecond).toBe(1_000_000);
  });

  it('endpoint and ca: operator option only, valid URL and certificate', () => {
    refuses({ ...inputs.sendgrid, endpoint: { url: 'https://relay.example.com' } }, 'endpoint', { message: /operator option/ });
    refuses({ ...inputs.sendgrid, ca: CA_PEM }, 'ca', { message: /operator option/ });
    const op = { allowEndpoint: true };
    refuses({ ...inputs.sendgrid, endpoint: { url: 'ftp://relay.example.com' } }, 'endpoint.url', op);
    refuses({ ...inputs.sendgrid, endpoint: { url: 'not a url' } }, 'endpoint.url', op);
    refuses({ ...inputs.smtp, endpoint: { url: 'https://relay.example.com' } }, 'endpoint.url', op);
    refuses({ ...inputs.sendgrid, endpoint: { url: 'https://user:hunter2secret@relay.example.com' } }, 'endpoint.url', { ...op, secrets: ['hunter2secret'] });
    refuses({ ...inputs.sendgrid, endpoint: { url: 'https://relay.example.com' }, ca: `-----BEGIN CERTIFICATE-----\n${CA_BODY.slice(0, 200)}\n-----END CERTIFICATE-----` }, 'ca', { ...op, message: /PEM certificate/ });
    refuses({ ...inputs.apns, ca: CA_PEM }, 'ca', { ...op, message: /only used with an endpoint/ });
    refuses({ ...inputs.fcm, endpoint: { url: 'https://127.0.0.1:9443' } }, 'ca', { ...op, message: /TLS redirect/ });
  });

  it('apns.key: a P-256 EC key that parses; not P-384, not RSA, not a malformed PEM', () => {
    refuses(withVendor('apns', { key: P384 }), 'apns.key', { message: /secp384r1; APNs needs P-256/, secrets: [P384] });
    refuses(withVendor('apns', { key: RSA }), 'apns.key', { message: /RSA key was given/, secrets: [RSA] });
    refuses(withVendor('apns', { key: MALFORMED_PEM }), 'apns.key', { message: /not a \.p8 private key/, secrets: [MALFORMED_PEM] });
    refuses(withVendor('apns', { key: 42 }), 'apns.key', { message: /expected a string/ });
  });

  it('apns ids, topic and environment', () => {
    refuses(withVendor('apns', { keyId: 'abc123defg' }), 'apns.keyId');
    refuses(withVendor('apns', { teamId: 'SANDBOXTEAM' }), 'apns.teamId');
    refuses(withVendor('apns', { topic: 'app' }), 'apns.topic');
    refuses(withVendor('apns', { topic: 'com.example app' }), 'apns.topic');
    refuses(withVendor('apns', { environment: 'staging' }), 'apns.environment');
  });

  it('fcm: one way to sign in, the key file’s fields checked, nothing of it quoted', () => {
    refuses({ ...inputs.fcm, fcm: { serviceAccount: SA, accessToken: 'ya29.x-token' } }, 'fcm', { allowEndpoint: true });
    refuses({ ...inputs.fcm, fcm: {} }, 'fcm');
    const broken = JSON.stringify(SA).slice(0, -20);
    refuses({ ...inputs.fcm, fcm: { serviceAccount: broken } }, 'fcm.serviceAccount', { message: /not JSON/, secrets: [broken, RSA] });
    refuses({ ...inputs.fcm, fcm: { serviceAccount: { ...SA, type: 'authorized_user' } } }, 'fcm.serviceAccount.type', { secrets: [RSA] });
    refuses({ ...inputs.fcm, fcm: { serviceAccount: { ...SA, project_id: 'X' } } }, 'fcm.serviceAccount.project_id');
    refuses({ ...inputs.fcm, fcm: { serviceAccount: { ...SA, client_email: 'not-an-email' } } }, 'fcm.serviceAccount.client_email', { secrets: [RSA] });
    refuses({ ...inputs.fcm, fcm: { serviceAccount: { ...SA, private_key: P256 } } }, 'fcm.serviceAccount.private_key', { message: /EC key was given/, secrets: [P256] });
    refuses({ ...inputs.fcm, fcm: { serviceAccount: { ...SA, private_key: MALFORMED_PEM } } }, 'fcm.serviceAccount.private_key', { secrets: [MALFORMED_PEM] });
    refuses({ ...inputs.fcm, fcm: { serviceAccount: { ...SA, private_key_id: 'has spaces in it' } } }, 'fcm.serviceAccount.private_key_id', { secrets: ['has spaces in it'] });
    refuses({ ...inputs.fcm, fcm: { projectId: 'notify-primary', accessToken: 'short' } }, 'fcm.accessToken', { allowEndpoint: true, secrets: ['short'] });
  });

  it('sendgrid: API key shape, addresses, webhook key', () => {
    const bad = 'SG.sandbox.0123456789abcdef0123456789abcdef';
    refuses(withVendor('sendgrid', { apiKey: bad }), 'sendgrid.apiKey', { secrets: [bad] });
    refuses(withVendor('sendgrid', { apiKey: `${SG_KEY} ` + 'x' }), 'sendgrid.apiKey', { secrets: [SG_KEY] });
    refuses(withVendor('sendgrid', { from: 'notify' }), 'sendgrid.from');
    refuses(withVendor('sendgrid', { replyTo: 'a@b' }), 'sendgrid.replyTo');
    refuses(withVendor('sendgrid', { webhookPublicKey: 'not base64 at all!' }), 'sendgrid.webhookPublicKey');
    const p384 = spki(crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey);
    refuses(withVendor('sendgrid', { webhookPublicKey: p384 }), 'sendgrid.webhookPublicKey', { message: /P-256/ });
  });

  it('smtp: URL scheme, host, user and password together, nothing of it quoted', () => {
    refuses(withVendor('smtp', { url: 'https://user:s3cretPassw0rd@mail.example.com' }), 'smtp.url', { secrets: ['s3cretPassw0rd'] });
    refuses(withVendor('smtp', { url: 'smtp://user:s3cretPassw0rd@' }), 'smtp.url', { secrets: ['s3cretPassw0rd'] });
    refuses(withVendor('smtp', { url: 'smtp://user:s3cretPassw0rd@mail.example.com/path' }), 'smtp.url', { secrets: ['s3cretPassw0rd'] });
    refuses(withVendor('smtp', { url: 'smtp://:s3cretPassw0rd@mail.example.com' }), 'smtp.url', { message: /both user and password/, secrets: ['s3cretPassw0rd'] });
    refuses(withVendor('smtp', { url: 'smtp://user@mail.example.com' }), 'smtp.url', { message: /both user and password/ });
    refuses(withVendor('smtp', { url: 'smtp://user:%E0%A4%A@mail.example.com' }), 'smtp.url', { message: /percent-encoded/ });
    refuses(withVendor('smtp', { from: 'nobody' }), 'smtp.from');
  });

  it('twilio: account, one way to sign in, one sender', () => {
    refuses(withVendor('twilio', { accountSid: 'AC123' }), 'twilio.accountSid');
    refuses(withVendor('twilio', { apiKeySid: API_KEY_SID, apiKeySecret: API_KEY_SECRET }), 'twilio', { message: /exactly one way/, secrets: [AUTH_TOKEN, API_KEY_SECRET] });
    refuses(withVendor('twilio', { authToken: undefined }), 'twilio', { message: /exactly one way/ });
    refuses(withVendor('twilio', { authToken: 'NOT-A-HEX-TOKEN-but-secret' }), 'twilio.authToken', { secrets: ['NOT-A-HEX-TOKEN-but-secret'] });
    refuses({ ...inputs.twilio, twilio: { accountSid: ACCOUNT, apiKeySid: API_KEY_SID, from: '+15005550006' } }, 'twilio.apiKeySecret');
    refuses({ ...inputs.twilio, twilio: { accountSid: ACCOUNT, apiKeySecret: API_KEY_SECRET, from: '+15005550006' } }, 'twilio.apiKeySid', { secrets: [API_KEY_SECRET] });
    refuses({ ...inputs.twilio, twilio: { accountSid: ACCOUNT, apiKeySid: 'SKshort', apiKeySecret: API_KEY_SECRET, from: '+15005550006' } }, 'twilio.apiKeySid', { secrets: [API_KEY_SECRET] });
    refuses({ ...inputs.twilio, twilio: { accountSid: ACCOUNT, apiKeySid: API_KEY_SID, apiKeySecret: 'tooShortSecret', from: '+15005550006' } }, 'twilio.apiKeySecret', { secrets: ['tooShortSecret'] });
    refuses(withVendor('twilio', { messagingServiceSid: MG }), 'twilio', { message: /exactly one sender/ });
    refuses(withVendor('twilio', { from: undefined }), 'twilio', { message: /exactly one sender/ });
    refuses(withVendor('twilio', { from: '0151 1234567' }), 'twilio.from');
    refuses({ ...inputs.twilio, twilio: { accountSid: ACCOUNT, authToken: AUTH_TOKEN, messagingServiceSid: 'MG12' } }, 'twilio.messagingServiceSid');
  });

  it('sns: region, key shapes, sender id', () => {
    refuses(withVendor('sns', { region: 'eu-west' }), 'sns.region');
    refuses(withVendor('sns', { accessKeyId: 'AKIASANDBOX1234ABCD' }), 'sns.accessKeyId', { secrets: ['AKIASANDBOX1234ABCD'] });
    refuses(withVendor('sns', { secretAccessKey: AWS_SECRET.slice(1) }), 'sns.secretAccessKey', { secrets: [AWS_SECRET.slice(1)] });
    refuses(withVendor('sns', { senderId: 'TwelveChars1' }), 'sns.senderId');
  });
});

describe('fingerprintOf and hintOf', () => {
  it('fingerprint: 16 hex digits, stable, independent of key order, different for another secret', () => {
    const a = fingerprintOf({ vendor: 'sns', accessKeyId: AWS_KEY, secretAccessKey: AWS_SECRET });
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprintOf({ secretAccessKey: AWS_SECRET, accessKeyId: AWS_KEY, vendor: 'sns' } as IntegrationSecret)).toBe(a);
    expect(fingerprintOf({ vendor: 'sns', accessKeyId: AWS_KEY, secretAccessKey: AWS_SECRET.replace('w', 'W') })).not.toBe(a);
    const canonical = JSON.stringify({ accessKeyId: AWS_KEY, secretAccessKey: AWS_SECRET, vendor: 'sns' });
    expect(a).toBe(crypto.createHash('sha256').update(canonical).digest('hex').slice(0, 16));
  });

  it('hint: … and the last 4 characters of what the admin can recognise', () => {
    const body = P256.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    expect(hintOf(parse(inputs.apns).secret)).toBe(`…${body.slice(-4)}`);
    expect(hintOf(parse(inputs.fcm).secret)).toBe('…4567');
    expect(hintOf({ vendor: 'fcm', accessToken: 'ya29.sandbox-token' })).toBe('…oken');
    expect(hintOf(parse(inputs.sendgrid).secret)).toBe(`…${SG_KEY.slice(-4)}`);
    expect(hintOf(parse(inputs.smtp).secret)).toBe('….com');
    expect(hintOf({ vendor: 'smtp', user: null, pass: null })).toBe('no login');
    expect(hintOf(parse(inputs.twilio).secret)).toBe('…f0f0');
    expect(hintOf({ vendor: 'twilio', apiKeySid: API_KEY_SID, apiKeySecret: API_KEY_SECRET })).toBe('…b2b2');
    expect(hintOf(parse(inputs.sns).secret)).toBe('…MPLE');
  });
});
