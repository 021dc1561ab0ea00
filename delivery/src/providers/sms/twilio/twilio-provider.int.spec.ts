import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { TwilioProvider } from './twilio-provider';

describe('TwilioProvider (twilio SDK with a routed RequestClient → sandbox Twilio Messages)', () => {
  let sandbox: Sandbox;
  let sms: TwilioProvider;

  const make = (timeoutMs = 2000, authToken?: string) => {
    const ep = sandbox.endpoints.twilio!;
    const c = sandbox.credentials.twilio;
    return new TwilioProvider({
      accountSid: c.accountSid,
      authToken: authToken ?? c.authToken,
      from: c.from,
      statusCallbackUrl: 'https://hooks.example.com/twilio/status',
      baseUrl: ep.url,
      ca: sandbox.ca,
      timeoutMs,
    });
  };

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'twilio', kind: 'twilio' }] });
    sms = make();
  });
  afterAll(async () => {
    await sms.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('delivers To/Body with the delivery id on the status callback', async () => {
    const out = await sms.send([{ deliveryId: 'n1:u1:d1', address: '+4915112345678', text: 'Hello SMS ✓' }]);
    expect(out).toEqual([{ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/^SM[0-9a-f]{32}$/) }]);
    expect(sandbox.instance('twilio').accepted()).toEqual([
      expect.objectContaining({ address: '+4915112345678', text: 'Hello SMS ✓', deliveryId: 'n1:u1:d1' }),
    ]);
  });

  it('sends many concurrently', async () => {
    const out = (await Promise.all(Array.from({ length: 200 }, (_, i) => sms.send([{ deliveryId: `b${i}`, address: `+1415555${String(i).padStart(4, '0')}`, text: 't' }])))).flat();
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('twilio').count()).toBe(200);
  });

  it('maps 21211 invalid number and 21610 unsubscribed to permanent + invalidDevice', async () => {
    sandbox.instance('twilio').addPermanentFailures(['+4915100000001']);
    const out = (
      await Promise.all([
        sms.send([{ deliveryId: 'magic', address: '+15005550001', text: 't' }]),
        sms.send([{ deliveryId: 'listed', address: '+4915100000001', text: 't' }]),
      ])
    ).flat();
    expect(out).toEqual([
      expect.objectContaining({ deliveryId: 'magic', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('400 21211') }),
      expect.objectContaining({ deliveryId: 'listed', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('400 21610') }),
    ]);
  });

  it('maps 429 to transient with retryAfterMs from Retry-After', async () => {
    sandbox.instance('twilio').setFaults({ rateLimitPerSecond: 0.5, rateLimitBurst: 1 });
    const out = (await Promise.all([1, 2].map((i) => sms.send([{ deliveryId: `r${i}`, address: '+4915112345678', text: 't' }])))).flat();
    expect(out.map((o) => o.outcome).sort()).toEqual(['accepted', 'transient']);
    expect(out.find((o) => o.outcome === 'transient')).toMatchObject({ reason: expect.stringContaining('429 20429'), retryAfterMs: 2000 });
  });

  it('rejects with transient outcomes on 5xx, outage, hang and bad credentials', async () => {
    const inst = sandbox.instance('twilio');
    const msg = [{ deliveryId: 'x', address: '+4915112345678', text: 't' }];
    inst.setFaults({ errorRate: 1 });
    const err = await sms.send(msg).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual([expect.objectContaining({ outcome: 'transient', reason: expect.stringMatching(/^twilio 50[03]/) })]);
    inst.setFaults({ errorRate: 0, outage: true });
    await expect(sms.send(msg)).rejects.toThrow(/twilio 503 20503/);
    inst.setFaults({ outage: false, hang: true });
    const quick = make(300);
    try {
      const hung = await quick.send(msg).catch((e: unknown) => e);
      expect((hung as Error).message).toMatch(/timeout/);
      expect((hung as ProviderUnavailableError).outcomes[0]).toMatchObject({ maybeDelivered: true });
      expect((err as ProviderUnavailableError).outcomes[0]).not.toHaveProperty('maybeDelivered');
    } finally {
      await quick.close();
    }
    inst.setFaults({ hang: false });
    const wrong = make(2000, 'wrong-token');
    try {
      await expect(wrong.send(msg)).rejects.toThrow(/twilio 401 20003/);
    } finally {
      await wrong.close();
    }
    expect(inst.count()).toBe(0);
  });
});
