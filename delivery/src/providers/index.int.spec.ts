import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { sandboxProviderInputs } from '#sandbox/inputs';
import { sandboxIntegrations } from '#sandbox/integrations';
import { parseIntegrationInput } from '#schema/values';
import { createProviders, type Providers } from './index';
import { toProviderIntegration, type ProviderIntegration } from './integration';
import type { Channel } from './port';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

const ADDRESS: Record<Channel, string> = {
  ios: 'ab'.repeat(32),
  android: `android:APA91b${'z'.repeat(40)}`,
  email: 'ann@example.com',
  sms: '+4915112345678',
};

const QUOTAS: Record<string, number> = { 'fcm-primary': 600, 'fcm-secondary': 300 };

describe('createProviders with the sandbox integrations', () => {
  let sandbox: Sandbox;
  let providers: Providers;

  beforeAll(async () => {
    sandbox = await startSandbox();
    providers = createProviders(
      sandboxIntegrations(sandbox).map((i) => (QUOTAS[i.name] !== undefined ? { ...i, quotaPerSecond: QUOTAS[i.name] } : i)),
    );
  });
  afterAll(async () => {
    await providers.close();
    await sandbox.close();
  });

  it('builds the default chains, named after the sandbox instances', () => {
    const names = Object.fromEntries(Object.entries(providers.chains).map(([c, ps]) => [c, ps.map((p) => p.name)]));
    expect(names).toEqual({
      ios: ['apns', 'fcm-ios'],
      android: ['fcm-primary', 'fcm-secondary'],
      email: ['sendgrid', 'smtp'],
      sms: ['twilio', 'sns'],
    });
    for (const [channel, chain] of Object.entries(providers.chains)) for (const p of chain) expect(p.channel).toBe(channel);
    expect(providers.quotas).toMatchObject({ 'fcm-primary': 600, 'fcm-secondary': 300 });
    expect(providers.all.map((p) => [p.name, p.maxBatch])).toEqual([
      ['apns', 1], ['fcm-ios', 500], ['fcm-primary', 500], ['fcm-secondary', 500], ['sendgrid', 1000], ['smtp', 1], ['twilio', 1], ['sns', 1],
    ]);
  });

  it('every provider of every chain delivers to its own sandbox instance', async () => {
    for (const channel of Object.keys(ADDRESS) as Channel[]) {
      for (const p of providers.chains[channel]) {
        const deliveryId = `n1:u1:${p.name}`;
        const out = await p.send([{ deliveryId, address: ADDRESS[channel], text: `via ${p.name}`, expiresAt: EXPIRES }]);
        expect(out).toEqual([expect.objectContaining({ deliveryId, outcome: 'accepted' })]);
        expect(sandbox.instance(p.name).accepted()).toEqual([
          expect.objectContaining({ address: ADDRESS[channel], text: `via ${p.name}`, deliveryId }),
        ]);
      }
    }
  });

  it('FCM quotas answer with the sandbox-mode Retry-After of 1 s', async () => {
    sandbox.instance('fcm-primary').setFaults({ rateLimitPerSecond: 1, rateLimitBurst: 1 });
    try {
      const fcm = providers.chains.android[0]!;
      const out = await fcm.send(
        [1, 2, 3].map((n) => ({ deliveryId: `n2:u${n}:fcm`, address: ADDRESS.android, text: 'quota', expiresAt: EXPIRES })),
      );
      expect(out).toContainEqual(expect.objectContaining({ outcome: 'transient', retryAfterMs: 1000 }));
    } finally {
      sandbox.reset();
    }
  });

  it('refuses integrations it cannot build, naming them', () => {
    const apns: ProviderIntegration = sandboxIntegrations(sandbox)[0];
    expect(() => createProviders([apns, apns])).toThrow(/two integrations are named "apns"/);
    const smtp = sandboxIntegrations(sandbox).find((i) => i.vendor === 'smtp')!;
    expect(() => createProviders([{ ...smtp, endpoint: undefined } as unknown as ProviderIntegration])).toThrow(
      /smtp: SMTP has no vendor host/,
    );
    const fcm = sandboxIntegrations(sandbox).find((i) => i.vendor === 'fcm')!;
    expect(() => createProviders([{ ...fcm, ca: undefined }])).toThrow(/fcm-ios: an FCM endpoint .* needs a ca/);
  });

  it('without a sandbox the description names what is missing', () => {
    expect(() => sandboxIntegrations({ ...sandbox.describe(), endpoints: {} })).toThrow(/the sandbox has no "apns" instance/);
  });
});

/*
 * What the service does with an operator's provider settings: validate them (as a tenant's, but
 * with endpoints allowed), map them onto clients, send. The sandbox starts with credentials shaped
 * like the vendors' (its made-up defaults need not pass the vendors' format checks).
 */
describe('operator inputs for the sandbox, validated and mapped, deliver', () => {
  let sandbox: Sandbox;
  let providers: Providers;

  beforeAll(async () => {
    sandbox = await startSandbox({
      credentials: {
        apns: { keyId: 'SANDBOXKEY', teamId: 'SANDBOXTM1' },
        sendgridApiKey: 'SG.sandboxSandboxSandbox.' + 'x'.repeat(43),
        twilio: { accountSid: 'AC' + 'a1'.repeat(16), authToken: 'f0'.repeat(16), from: '+15005550006' },
        sns: { accessKeyId: 'AKIASANDBOX123456789', secretAccessKey: 'S'.repeat(40), region: 'us-east-1' },
      },
    });
    const integrations = sandboxProviderInputs(sandbox).map((input) => {
      const { spec, secret } = parseIntegrationInput(input, { allowEndpoint: true });
      return toProviderIntegration('platform', spec, secret);
    });
    providers = createProviders(integrations);
  });
  afterAll(async () => {
    await providers.close();
    await sandbox.close();
  });

  it('every provider of every chain', async () => {
    for (const channel of Object.keys(ADDRESS) as Channel[]) {
      for (const p of providers.chains[channel]) {
        const deliveryId = `n3:u1:${p.name}`;
        const out = await p.send([{ deliveryId, address: ADDRESS[channel], text: `via ${p.name}`, expiresAt: EXPIRES }]);
        expect(out).toEqual([expect.objectContaining({ deliveryId, outcome: 'accepted' })]);
        // Without a receipts URL, Twilio has nowhere to carry the delivery id.
        expect(sandbox.instance(p.name).accepted()).toEqual([expect.objectContaining({ address: ADDRESS[channel], text: `via ${p.name}` })]);
      }
    }
  });
});
