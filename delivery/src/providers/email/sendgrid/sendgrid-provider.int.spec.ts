import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { SendgridProvider } from './sendgrid-provider';

describe('SendgridProvider (@sendgrid/mail → sandbox SendGrid v3)', () => {
  let sandbox: Sandbox;
  let sendgrid: SendgridProvider;

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'sendgrid', kind: 'sendgrid' }] });
    sendgrid = new SendgridProvider({
      apiKey: sandbox.credentials.sendgridApiKey,
      from: 'notify@example.com',
      baseUrl: sandbox.endpoints.sendgrid!.url,
      ca: sandbox.ca,
      timeoutMs: 500,
    });
  });
  afterAll(async () => {
    await sendgrid.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('delivers each message with its own text and delivery id', async () => {
    const out = await sendgrid.send([
      { deliveryId: 'd1', address: 'ann@example.com', text: 'Hello Ann {{not a tag}}' },
      { deliveryId: 'd2', address: 'bob@example.com', text: 'Hallo Bob – ü' },
    ]);
    expect(out).toEqual([
      { deliveryId: 'd1', outcome: 'accepted', providerMessageId: expect.any(String) },
      { deliveryId: 'd2', outcome: 'accepted', providerMessageId: expect.any(String) },
    ]);
    expect(sandbox.instance('sendgrid').accepted()).toEqual([
      expect.objectContaining({ address: 'ann@example.com', text: 'Hello Ann {{not a tag}}', deliveryId: 'd1' }),
      expect.objectContaining({ address: 'bob@example.com', text: 'Hallo Bob – ü', deliveryId: 'd2' }),
    ]);
    expect(sandbox.instance('sendgrid').stats().requests).toBe(1);
  });

  it('sends 1000 personalizations in one request', async () => {
    const msgs = Array.from({ length: 1000 }, (_, i) => ({ deliveryId: `b${i}`, address: `user${i}@example.com`, text: `m${i}` }));
    const out = await sendgrid.send(msgs);
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    const inst = sandbox.instance('sendgrid');
    expect(inst.count()).toBe(1000);
    expect(inst.stats().requests).toBe(1);
    expect(inst.accepted({ address: 'user999@example.com' })).toEqual([expect.objectContaining({ text: 'm999', deliveryId: 'b999' })]);
    await expect(sendgrid.send([...msgs, msgs[0]!])).rejects.toThrow(RangeError);
  });

  it('marks refused addresses permanent + invalidDevice and resends the rest once', async () => {
    sandbox.instance('sendgrid').addPermanentFailures(['gone@example.com']);
    const out = await sendgrid.send([
      { deliveryId: 'a', address: 'ann@example.com', text: 't' },
      { deliveryId: 'b', address: 'bad-bob@example.com', text: 't' },
      { deliveryId: 'c', address: 'gone@example.com', text: 't' },
      { deliveryId: 'd', address: 'dan@example.com', text: 't' },
    ]);
    expect(out.map((o) => [o.deliveryId, o.outcome])).toEqual([
      ['a', 'accepted'],
      ['b', 'permanent'],
      ['c', 'permanent'],
      ['d', 'accepted'],
    ]);
    expect(out[1]).toMatchObject({ invalidDevice: true, reason: 'sendgrid 400 Does not contain a valid address.' });
    expect(sandbox.instance('sendgrid').stats().requests).toBe(2);
    expect(sandbox.instance('sendgrid').count()).toBe(2);
  });

  it('maps 429 to transient with retryAfterMs from X-RateLimit-Reset', async () => {
    sandbox.instance('sendgrid').setFaults({ rateLimitPerSecond: 1, rateLimitBurst: 1 });
    await sendgrid.send([{ deliveryId: 'a', address: 'ann@example.com', text: 't' }]);
    const out = await sendgrid.send([{ deliveryId: 'b', address: 'bob@example.com', text: 't' }]);
    expect(out).toEqual([expect.objectContaining({ outcome: 'transient', reason: 'sendgrid 429 too many requests', retryAfterMs: expect.any(Number) })]);
    const ms = (out[0] as { retryAfterMs: number }).retryAfterMs;
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThanOrEqual(3000);
  });

  it('rejects with transient outcomes on 5xx, outage and a hung request', async () => {
    const inst = sandbox.instance('sendgrid');
    const msgs = [{ deliveryId: 'a', address: 'ann@example.com', text: 't' }, { deliveryId: 'b', address: 'bob@example.com', text: 't' }];
    inst.setFaults({ errorRate: 1 });
    const err = await sendgrid.send(msgs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual([
      expect.objectContaining({ deliveryId: 'a', outcome: 'transient', reason: expect.stringMatching(/^sendgrid 50[03]/) }),
      expect.objectContaining({ deliveryId: 'b', outcome: 'transient' }),
    ]);
    inst.setFaults({ errorRate: 0, outage: true });
    await expect(sendgrid.send(msgs)).rejects.toThrow(/sendgrid 503/);
    inst.setFaults({ outage: false, hang: true });
    const hung = await sendgrid.send(msgs).catch((e: unknown) => e);
    expect((hung as Error).message).toMatch(/timeout/);
    expect((hung as ProviderUnavailableError).outcomes.map((o) => o.outcome === 'transient' && o.maybeDelivered)).toEqual([true, true]);
    expect((err as ProviderUnavailableError).outcomes.some((o) => o.outcome === 'transient' && o.maybeDelivered)).toBe(false);
    expect(inst.count()).toBe(0);
  });

  it('treats a wrong API key as a provider fault', async () => {
    const wrong = new SendgridProvider({ apiKey: 'SG.wrong', from: 'notify@example.com', baseUrl: sandbox.endpoints.sendgrid!.url, ca: sandbox.ca });
    try {
      await expect(wrong.send([{ deliveryId: 'a', address: 'ann@example.com', text: 't' }])).rejects.toThrow(/sendgrid 401/);
    } finally {
      await wrong.close();
    }
  });
});
