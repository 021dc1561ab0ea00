import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { SmtpProvider } from './smtp-provider';

describe('SmtpProvider (nodemailer pool → sandbox SMTP with STARTTLS)', () => {
  let sandbox: Sandbox;
  let smtp: SmtpProvider;

  const make = (timeoutMs = 2000) => {
    const ep = sandbox.endpoints.smtp!;
    return new SmtpProvider({
      host: ep.host,
      port: ep.port,
      user: sandbox.credentials.smtp.user,
      pass: sandbox.credentials.smtp.pass,
      from: 'notify@example.com',
      ca: sandbox.ca,
      maxConnections: 8,
      timeoutMs,
    });
  };

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'smtp', kind: 'smtp' }] });
    smtp = make();
  });
  afterAll(async () => {
    await smtp.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('delivers with the delivery id in X-Delivery-Id', async () => {
    const text = 'Hello Ann, ünïcödé and a long line '.repeat(5).trim();
    const out = await smtp.send([{ deliveryId: 'n1:u1:d1', address: 'ann@example.com', text }]);
    expect(out).toEqual([{ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/@notify\.delivery>$/) }]);
    expect(sandbox.instance('smtp').accepted()).toEqual([expect.objectContaining({ address: 'ann@example.com', text, deliveryId: 'n1:u1:d1' })]);
  });

  it('sends many messages over the pool', async () => {
    const msgs = Array.from({ length: 100 }, (_, i) => ({ deliveryId: `b${i}`, address: `u${i}@example.com`, text: `m${i}` }));
    const out = (await Promise.all(msgs.map((m) => smtp.send([m])))).flat();
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('smtp').count()).toBe(100);
  });

  it('maps 550 unknown user to permanent + invalidDevice', async () => {
    sandbox.instance('smtp').addPermanentFailures(['gone@example.com']);
    const out = await smtp.send([{ deliveryId: 'g', address: 'gone@example.com', text: 't' }]);
    expect(out).toEqual([expect.objectContaining({ outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('550') })]);
  });

  it('maps a 4.7.1 rate limit to a transient outcome', async () => {
    sandbox.instance('smtp').setFaults({ rateLimitPerSecond: 1, rateLimitBurst: 1 });
    const out = (await Promise.all([1, 2].map((i) => smtp.send([{ deliveryId: `r${i}`, address: `r${i}@example.com`, text: 't' }])))).flat();
    expect(out.map((o) => o.outcome).sort()).toEqual(['accepted', 'transient']);
    expect(out.find((o) => o.outcome === 'transient')).toMatchObject({ reason: expect.stringContaining('451') });
  });

  it('rejects on a temporary failure, an outage and a hang', async () => {
    const inst = sandbox.instance('smtp');
    inst.setFaults({ errorRate: 1 });
    await expect(smtp.send([{ deliveryId: 'e', address: 'e@example.com', text: 't' }])).rejects.toThrow(ProviderUnavailableError);
    inst.setFaults({ errorRate: 0, outage: true });
    const err = await smtp.send([{ deliveryId: 'o', address: 'o@example.com', text: 't' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes[0]).toMatchObject({ outcome: 'transient', reason: expect.stringContaining('421') });
    inst.setFaults({ outage: false, hang: true });
    const quick = make(300);
    try {
      const hung = await quick.send([{ deliveryId: 'h', address: 'h@example.com', text: 't' }]).catch((e: unknown) => e);
      expect(hung).toBeInstanceOf(ProviderUnavailableError);
      expect((hung as ProviderUnavailableError).outcomes[0]).toMatchObject({ maybeDelivered: true });
      expect((err as ProviderUnavailableError).outcomes[0]).not.toHaveProperty('maybeDelivered');
    } finally {
      await quick.close();
    }
    inst.setFaults({ hang: false });
    await expect(smtp.send([{ deliveryId: 'ok', address: 'ok@example.com', text: 't' }])).resolves.toEqual([expect.objectContaining({ outcome: 'accepted' })]);
  });
});
