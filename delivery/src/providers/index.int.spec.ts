import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../../sandbox/src';
import { createProviders, type Providers } from './index';
import type { Channel } from './port';

const ADDRESS: Record<Channel, string> = {
  ios: 'ab'.repeat(32),
  android: `android:APA91b${'z'.repeat(40)}`,
  email: 'ann@example.com',
  sms: '+4915112345678',
};

describe('createProviders in sandbox mode', () => {
  let sandbox: Sandbox;
  let providers: Providers;

  beforeAll(async () => {
    sandbox = await startSandbox();
    providers = createProviders({ sandbox, fcm: { primary: { quotaPerSecond: 600 }, secondary: { quotaPerSecond: 300 } } });
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
        const out = await p.send([{ deliveryId, address: ADDRESS[channel], text: `via ${p.name}` }]);
        expect(out).toEqual([expect.objectContaining({ deliveryId, outcome: 'accepted' })]);
        expect(sandbox.instance(p.name).accepted()).toEqual([
          expect.objectContaining({ address: ADDRESS[channel], text: `via ${p.name}`, deliveryId }),
        ]);
      }
    }
  });

  it('outside sandbox mode names what is missing', () => {
    expect(() => createProviders({ sandbox: null })).toThrow(/apns is required outside sandbox mode/);
  });
});
