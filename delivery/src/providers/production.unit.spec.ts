import crypto from 'node:crypto';
import dns from 'node:dns';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createProviders } from './index';
import { createProvider, type ProviderIntegration } from './integration';
import type { Channel, Provider } from './port';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

/*
 * Every client resolves its host's name before it connects: answering each lookup "not found"
 * shows where the first request would go, without any network. An endpoint is looked up the same
 * way (or, as an IP, not at all), so one leaking in changes what is seen.
 */

const ADDRESS: Record<Channel, string> = {
  ios: 'ab'.repeat(32),
  android: `android:APA91b${'z'.repeat(40)}`,
  email: 'ann@example.com',
  sms: '+4915112345678',
};

const apnsKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const googleKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

const apns = (environment?: 'production' | 'development'): ProviderIntegration => ({
  name: 'apns',
  vendor: 'apns',
  channel: 'ios',
  credentials: { type: 'token', key: apnsKey, keyId: 'KEYID12345', teamId: 'TEAMID1234' },
  topic: 'com.example.app',
  ...(environment ? { environment } : {}),
});
const fcm = (channel: 'android' | 'ios'): ProviderIntegration => ({
  name: `fcm-${channel}`,
  vendor: 'fcm',
  channel,
  projectId: 'tenant-project',
  credentials: { type: 'accessToken', accessToken: 'ya29.test' },
});
const sendgrid: ProviderIntegration = {
  name: 'sendgrid',
  vendor: 'sendgrid',
  channel: 'email',
  credentials: { type: 'apiKey', apiKey: 'SG.test' },
  from: 'notify@example.com',
};
const twilio: ProviderIntegration = {
  name: 'twilio',
  vendor: 'twilio',
  channel: 'sms',
  credentials: { type: 'authToken', accountSid: 'AC' + '0'.repeat(32), authToken: 'secret' },
  from: '+15005550006',
};
const sns: ProviderIntegration = {
  name: 'sns',
  vendor: 'sns',
  channel: 'sms',
  region: 'eu-west-1',
  credentials: { type: 'accessKey', accessKeyId: 'AKIATEST', secretAccessKey: 'secret' },
};
const smtp: ProviderIntegration = {
  name: 'smtp',
  vendor: 'smtp',
  channel: 'email',
  credentials: { type: 'login', user: 'u', pass: 'p' },
  from: 'notify@example.com',
  endpoint: { host: 'smtp.example.net', port: 587 },
};

let lookedUp: string[];

beforeEach(() => {
  lookedUp = [];
  const notFound = (host: string) => Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', hostname: host });
  vi.spyOn(dns, 'lookup').mockImplementation(((host: string, ...rest: unknown[]) => {
    lookedUp.push(host);
    const callback = rest[rest.length - 1] as (err: Error) => void;
    process.nextTick(() => callback(notFound(host)));
  }) as typeof dns.lookup);
  // nodemailer asks a Resolver first and falls back to lookup.
  for (const m of ['resolve4', 'resolve6'] as const) {
    vi.spyOn(dns.Resolver.prototype, m).mockImplementation(((host: string, ...rest: unknown[]) => {
      const callback = rest[rest.length - 1] as (err: Error) => void;
      process.nextTick(() => callback(notFound(host)));
    }) as never);
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** The hosts the provider's first send looked up; the send itself fails with ENOTFOUND. */
const hostsOf = async (integration: ProviderIntegration): Promise<string[]> => {
  const provider = createProvider(integration, { timeoutMs: 5_000 });
  try {
    const out = await provider
      .send([{ deliveryId: 'n1:u1:d1', address: ADDRESS[integration.channel], text: 'hi', expiresAt: EXPIRES }])
      .catch((err: { outcomes?: unknown }) => err.outcomes);
    expect(out).toEqual([expect.objectContaining({ outcome: 'transient', reason: expect.stringMatching(/ENOTFOUND/) })]);
    return [...new Set(lookedUp)];
  } finally {
    await closeWithin(provider, 200);
  }
};

// node-apn's shutdown never returns once its HTTP/2 session failed to connect: it waits for
// close() of a session that is already destroyed, whose callback never comes.
const closeWithin = (p: Provider, ms: number) => Promise.race([p.close(), new Promise((resolve) => setTimeout(resolve, ms).unref())]);

describe('integrations without an endpoint reach the vendor', () => {
  it.each([
    ['apns (production by default)', 'api.push.apple.com', apns()],
    ['apns production', 'api.push.apple.com', apns('production')],
    ['apns development', 'api.sandbox.push.apple.com', apns('development')],
    ['fcm for android', 'fcm.googleapis.com', fcm('android')],
    ['fcm for ios', 'fcm.googleapis.com', fcm('ios')],
    ['sendgrid', 'api.sendgrid.com', sendgrid],
    ['twilio', 'api.twilio.com', twilio],
    ['sns', 'sns.eu-west-1.amazonaws.com', sns],
    ['smtp (its configured host)', 'smtp.example.net', smtp],
  ])('%s reaches %s', async (_, host, integration) => {
    expect(await hostsOf(integration)).toEqual([host]);
  });

  it('fcm with a service account talks to Google only', async () => {
    const integration: ProviderIntegration = {
      ...(fcm('android') as Extract<ProviderIntegration, { vendor: 'fcm' }>),
      credentials: {
        type: 'serviceAccount',
        serviceAccount: { projectId: 'tenant-project', clientEmail: 'notify@tenant-project.iam.gserviceaccount.com', privateKey: googleKey },
      },
    };
    // Which of FCM and the token endpoint (oauth2.googleapis.com) fails first is the SDK's affair
    // (over HTTP/1.1 the token comes first, and its failure ends the send).
    const hosts = await hostsOf(integration);
    expect(hosts.length).toBeGreaterThan(0);
    for (const host of hosts) expect(host).toMatch(/^(fcm|oauth2)\.googleapis\.com$/);
  });

  it('smtp has no vendor host: an endpoint is required', () => {
    const { endpoint: _, ...withoutEndpoint } = smtp as Extract<ProviderIntegration, { vendor: 'smtp' }>;
    expect(() => createProvider(withoutEndpoint as ProviderIntegration)).toThrow(/smtp: SMTP has no vendor host, so an endpoint is required/);
  });
});

describe('an endpoint replaces the vendor host', () => {
  const relay = { host: 'relay.example.net', port: 8443 };
  const url = { url: 'https://relay.example.net:8443' };
  const ca = '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n';
  it.each([
    ['apns', { ...apns(), endpoint: relay }],
    ['fcm', { ...fcm('android'), endpoint: relay, ca }],
    ['sendgrid', { ...sendgrid, endpoint: url }],
    ['twilio', { ...twilio, endpoint: url }],
    ['sns', { ...sns, endpoint: url }],
  ] as [string, ProviderIntegration][])('%s', async (_, integration) => {
    // The CA above is empty: the connection never gets that far.
    expect(await hostsOf(integration)).toEqual(['relay.example.net']);
  });
});

describe('createProviders', () => {
  it('chains each channel in the order given, names and quotas from the integrations', async () => {
    const providers = createProviders([
      { ...sns, quotaPerSecond: 20 },
      fcm('ios'),
      twilio,
      apns(),
      { ...fcm('android'), name: 'tenant-fcm' },
      { ...fcm('android'), name: 'platform-fcm' },
      smtp,
      sendgrid,
    ]);
    try {
      const names = Object.fromEntries(Object.entries(providers.chains).map(([c, ps]) => [c, ps.map((p) => p.name)]));
      expect(names).toEqual({
        ios: ['fcm-ios', 'apns'],
        android: ['tenant-fcm', 'platform-fcm'],
        email: ['smtp', 'sendgrid'],
        sms: ['sns', 'twilio'],
      });
      expect(providers.all.map((p) => p.name)).toEqual(['sns', 'fcm-ios', 'twilio', 'apns', 'tenant-fcm', 'platform-fcm', 'smtp', 'sendgrid']);
      expect(providers.quotas).toEqual({
        sns: 20, 'fcm-ios': undefined, twilio: undefined, apns: undefined, 'tenant-fcm': undefined, 'platform-fcm': undefined, smtp: undefined, sendgrid: undefined,
      });
    } finally {
      await providers.close();
    }
  });

  it('refuses two integrations with one name', () => {
    expect(() => createProviders([sendgrid, sendgrid])).toThrow(/two integrations are named "sendgrid"/);
  });
});
