import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { SmtpProvider } from './smtp-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

describe('SmtpProvider (nodemailer pool → sandbox SMTP with STARTTLS)', () => {
  let sandbox: Sandbox;
  let smtp: SmtpProvider;

  const make = (timeoutMs = 2000, pass?: string) => {
    const ep = sandbox.endpoints.smtp!;
    return new SmtpProvider({
      host: ep.host,
      port: ep.port,
      user: sandbox.credentials.smtp.user,
      pass: pass ?? sandbox.credentials.smtp.pass,
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
    const out = await smtp.send([{ deliveryId: 'n1:u1:d1', address: 'ann@example.com', text, expiresAt: EXPIRES }]);
    expect(out).toEqual([{ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/@notify\.delivery>$/) }]);
    expect(sandbox.instance('smtp').accepted()).toEqual([expect.objectContaining({ address: 'ann@example.com', text, deliveryId: 'n1:u1:d1' })]);
  });

  it('sends many messages over the pool', async () => {
    const msgs = Array.from({ length: 100 }, (_, i) => ({ deliveryId: `b${i}`, address: `u${i}@example.com`, text: `m${i}`, expiresAt: EXPIRES }));
    const out = (await Promise.all(msgs.map((m) => smtp.send([m])))).flat();
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('smtp').count()).toBe(100);
  });

  it('maps 550 unknown user and 553 bad syntax to permanent + invalidDevice, with the codes and not the address', async () => {
    sandbox.instance('smtp').addPermanentFailures(['gone@example.com']);
    sandbox.instance('smtp').addPermanentFailures(['bad-syntax@example.com'], 'invalid');
    const out = (
      await Promise.all([
        smtp.send([{ deliveryId: 'g', address: 'gone@example.com', text: 't', expiresAt: EXPIRES }]),
        smtp.send([{ deliveryId: 'b', address: 'bad-syntax@example.com', text: 't', expiresAt: EXPIRES }]),
      ])
    ).flat();
    expect(out).toEqual([
      { deliveryId: 'g', outcome: 'permanent', invalidDevice: true, reason: 'smtp 550 5.1.1: recipient refused' },
      { deliveryId: 'b', outcome: 'permanent', invalidDevice: true, reason: 'smtp 553 5.1.3: recipient refused' },
    ]);
  });

  it('reports a refused login as rejected credentials (smtp 535)', async () => {
    const wrong = make(2000, 'not-the-password');
    try {
      const err = await wrong.send([{ deliveryId: 'l', address: 'ann@example.com', text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'l', outcome: 'transient', reason: 'smtp 535', credentialsRejected: true }]);
      expect(sandbox.instance('smtp').count()).toBe(0);
    } finally {
      await wrong.close();
    }
  });

  it('maps a 4.7.1 rate limit to a transient outcome', async () => {
    sandbox.instance('smtp').setFaults({ rateLimitPerSecond: 1, rateLimitBurst: 1 });
    const out = (await Promise.all([1, 2].map((i) => smtp.send([{ deliveryId: `r${i}`, address: `r${i}@example.com`, text: 't', expiresAt: EXPIRES }])))).flat();
    expect(out.map((o) => o.outcome).sort()).toEqual(['accepted', 'transient']);
    expect(out.find((o) => o.outcome === 'transient')).toMatchObject({ reason: expect.stringContaining('451') });
  });

  it('rejects on a temporary failure, an outage and a hang', async () => {
    const inst = sandbox.instance('smtp');
    inst.setFaults({ errorRate: 1 });
    await expect(smtp.send([{ deliveryId: 'e', address: 'e@example.com', text: 't', expiresAt: EXPIRES }])).rejects.toThrow(ProviderUnavailableError);
    inst.setFaults({ errorRate: 0, outage: true });
    const err = await smtp.send([{ deliveryId: 'o', address: 'o@example.com', text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    // 421 at the greeting: the pool requeues nothing (maxRequeues 0), so the message fails unsent.
    expect((err as ProviderUnavailableError).outcomes[0]).toMatchObject({ outcome: 'transient', reason: expect.stringMatching(/421|connection closed before the message was sent/) });
    inst.setFaults({ outage: false, hang: true });
    const quick = make(300);
    try {
      const hung = await quick.send([{ deliveryId: 'h', address: 'h@example.com', text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(hung).toBeInstanceOf(ProviderUnavailableError);
      expect((hung as ProviderUnavailableError).outcomes[0]).toMatchObject({ maybeDelivered: true });
      expect((err as ProviderUnavailableError).outcomes[0]).not.toHaveProperty('maybeDelivered');
    } finally {
      await quick.close();
    }
    inst.setFaults({ hang: false });
    await expect(smtp.send([{ deliveryId: 'ok', address: 'ok@example.com', text: 't', expiresAt: EXPIRES }])).resolves.toEqual([expect.objectContaining({ outcome: 'accepted' })]);
  });
});
