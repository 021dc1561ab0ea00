import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { SnsProvider } from './sns-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

describe('SnsProvider (@aws-sdk/client-sns with endpoint → sandbox SNS Query API)', () => {
  let sandbox: Sandbox;
  let sns: SnsProvider;

  const make = (timeoutMs = 2000, secret?: string, accessKeyId?: string) => {
    const c = sandbox.credentials.sns;
    return new SnsProvider({
      region: c.region,
      credentials: { accessKeyId: accessKeyId ?? c.accessKeyId, secretAccessKey: secret ?? c.secretAccessKey },
      endpoint: sandbox.endpoints.sns!.url,
      ca: sandbox.ca,
      timeoutMs,
    });
  };

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'sns', kind: 'sns' }] });
    sns = make();
  });
  afterAll(async () => {
    await sns.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('publishes PhoneNumber/Message with the delivery id as a message attribute', async () => {
    const out = await sns.send([{ deliveryId: 'n1:u1:d1', address: '+4915112345678', text: 'Hello <SNS> & co', expiresAt: EXPIRES }]);
    expect(out).toEqual([{ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/^[0-9a-f-]{36}$/) }]);
    expect(sandbox.instance('sns').accepted()).toEqual([
      expect.objectContaining({ address: '+4915112345678', text: 'Hello <SNS> & co', deliveryId: 'n1:u1:d1' }),
    ]);
  });

  it('sends many concurrently', async () => {
    const out = (await Promise.all(Array.from({ length: 200 }, (_, i) => sns.send([{ deliveryId: `b${i}`, address: `+1415555${String(i).padStart(4, '0')}`, text: 't', expiresAt: EXPIRES }])))).flat();
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('sns').count()).toBe(200);
  });

  it('maps an invalid phone number to permanent + invalidDevice, the reason without the number', async () => {
    const out = await sns.send([{ deliveryId: 'bad', address: '+15005550001', text: 't', expiresAt: EXPIRES }]);
    // SNS's message says "PhoneNumber Reason: +15005550001 is not valid to publish to".
    expect(out).toEqual([{ deliveryId: 'bad', outcome: 'permanent', invalidDevice: true, reason: 'sns 400 InvalidParameter: invalid phone number' }]);
  });

  it('maps Throttled (429) to transient with retryAfterMs', async () => {
    sandbox.instance('sns').setFaults({ rateLimitPerSecond: 1, rateLimitBurst: 1 });
    const out = (await Promise.all([1, 2].map((i) => sns.send([{ deliveryId: `r${i}`, address: '+4915112345678', text: 't', expiresAt: EXPIRES }])))).flat();
    expect(out.map((o) => o.outcome).sort()).toEqual(['accepted', 'transient']);
    expect(out.find((o) => o.outcome === 'transient')).toMatchObject({ reason: expect.stringContaining('429 Throttled'), retryAfterMs: 1000 });
  });

  it('rejects with transient outcomes on 5xx, outage, hang and an unknown access key', async () => {
    const inst = sandbox.instance('sns');
    const msg = [{ deliveryId: 'x', address: '+4915112345678', text: 't', expiresAt: EXPIRES }];
    inst.setFaults({ errorRate: 1 });
    const err = await sns.send(msg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual([expect.objectContaining({ outcome: 'transient', reason: expect.stringContaining('sns 500') })]);
    inst.setFaults({ errorRate: 0, outage: true });
    await expect(sns.send(msg)).rejects.toThrow(/sns 503/);
    inst.setFaults({ outage: false, hang: true });
    const quick = make(300);
    try {
      const hung = await quick.send(msg).catch((e: unknown) => e);
      expect(hung).toBeInstanceOf(ProviderUnavailableError);
      expect((hung as ProviderUnavailableError).outcomes[0]).toMatchObject({ maybeDelivered: true });
      expect((err as ProviderUnavailableError).outcomes[0]).not.toHaveProperty('maybeDelivered');
    } finally {
      await quick.close();
    }
    inst.setFaults({ hang: false });
    const wrong = make(2000, 'x', 'AKIAWRONG');
    try {
      const refused = await wrong.send(msg).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ProviderUnavailableError);
      expect((refused as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'x', outcome: 'transient', reason: 'InvalidClientTokenId', credentialsRejected: true }]);
    } finally {
      await wrong.close();
    }
    const wrongSecret = make(2000, 'not-the-secret-access-key');
    try {
      const refused = await wrongSecret.send(msg).catch((e: unknown) => e);
      expect((refused as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'x', outcome: 'transient', reason: 'SignatureDoesNotMatch', credentialsRejected: true }]);
    } finally {
      await wrongSecret.close();
    }
    expect(inst.count()).toBe(0);
  });
});
