import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { encodeReceipt, twilioReceipt, verifyTwilioCallback, type ReceiptRef } from '../../receipts';
import { TwilioProvider } from './twilio-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

const ref = (deliveryId: string): ReceiptRef => ({
  tenantId: 'acme',
  notificationId: 'n1',
  partition: 3,
  requestedPosition: 42,
  requestedAt: '2026-11-30T12:00:00.000Z',
  deliveryId,
  userId: 'u1',
  deviceId: 'd1',
  channel: 'sms',
});

type Callback = { url: string; signature: string; params: Record<string, string> };

describe('TwilioProvider (twilio SDK with a routed RequestClient → sandbox Twilio Messages)', () => {
  let sandbox: Sandbox;
  let sms: TwilioProvider;
  // Our receipts endpoint, where the sandbox posts status callbacks.
  let hooks: http.Server;
  let hooksUrl: string;
  let callbacks: Callback[] = [];

  const make = (timeoutMs = 2000, authToken?: string) => {
    const ep = sandbox.endpoints.twilio!;
    const c = sandbox.credentials.twilio;
    return new TwilioProvider({
      accountSid: c.accountSid,
      authToken: authToken ?? c.authToken,
      from: c.from,
      statusCallbackUrl: `${hooksUrl}/receipts/twilio`,
      baseUrl: ep.url,
      ca: sandbox.ca,
      timeoutMs,
    });
  };

  const callbacksFor = async (deliveryId: string, n: number): Promise<Callback[]> => {
    const until = Date.now() + 5000;
    for (;;) {
      const mine = callbacks.filter((c) => new URL(c.url).searchParams.get('deliveryId') === deliveryId);
      if (mine.length >= n || Date.now() > until) return mine;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  beforeAll(async () => {
    hooks = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        callbacks.push({
          url: `${hooksUrl}${req.url}`,
          signature: String(req.headers['x-twilio-signature'] ?? ''),
          params: Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString())),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    hooksUrl = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}`;
    sandbox = await startSandbox({ instances: [{ name: 'twilio', kind: 'twilio' }] });
    sms = make();
  });
  afterAll(async () => {
    await sms.close();
    await sandbox.close();
    hooks.closeAllConnections();
    await new Promise((resolve) => hooks.close(resolve));
  });
  beforeEach(() => {
    sandbox.reset();
    callbacks = [];
  });

  it('delivers To/Body with the delivery id on the status callback', async () => {
    const out = await sms.send([{ deliveryId: 'n1:u1:d1', address: '+4915112345678', text: 'Hello SMS ✓', expiresAt: EXPIRES }]);
    expect(out).toEqual([{ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/^SM[0-9a-f]{32}$/) }]);
    expect(sandbox.instance('twilio').accepted()).toEqual([
      expect.objectContaining({ address: '+4915112345678', text: 'Hello SMS ✓', deliveryId: 'n1:u1:d1' }),
    ]);
  });

  it('sends the time left as ValidityPeriod (1..36000 s) and the receipt token on the status callback', async () => {
    const now = Date.now();
    const out = await Promise.all([
      sms.send([{ deliveryId: 'v1', address: '+4915112345601', text: 't', expiresAt: now + 90_500, receipt: encodeReceipt(ref('v1')) }]),
      sms.send([{ deliveryId: 'v2', address: '+4915112345602', text: 't', expiresAt: now - 1000 }]),
      sms.send([{ deliveryId: 'v3', address: '+4915112345603', text: 't', expiresAt: now + 86_400_000 }]),
    ]);
    expect(out.flat().every((o) => o.outcome === 'accepted')).toBe(true);
    const inst = sandbox.instance('twilio');
    const [v1] = inst.accepted({ deliveryId: 'v1' });
    expect(v1!.validityPeriod).toBeGreaterThanOrEqual(90);
    expect(v1!.validityPeriod).toBeLessThanOrEqual(91);
    expect(inst.accepted({ deliveryId: 'v2' })[0]!.validityPeriod).toBe(1);
    expect(inst.accepted({ deliveryId: 'v3' })[0]!.validityPeriod).toBe(36_000);
    const callback = new URL(v1!.statusCallback!);
    expect(callback.pathname).toBe('/receipts/twilio');
    expect(callback.searchParams.get('deliveryId')).toBe('v1');
    expect(callback.searchParams.get('r')).toBe(encodeReceipt(ref('v1')));
    expect(new URL(inst.accepted({ deliveryId: 'v2' })[0]!.statusCallback!).searchParams.has('r')).toBe(false);
  });

  it('gets signed status callbacks back that verify and read as receipts (delivered, undelivered)', async () => {
    const inst = sandbox.instance('twilio');
    inst.addReceiptFailures(['+4915112345699'], 'undelivered');
    const token = sandbox.credentials.twilio.authToken;
    await sms.send([{ deliveryId: 'ok', address: '+4915112345698', text: 't', expiresAt: EXPIRES, receipt: encodeReceipt(ref('ok')) }]);
    await sms.send([{ deliveryId: 'lost', address: '+4915112345699', text: 't', expiresAt: EXPIRES, receipt: encodeReceipt(ref('lost')) }]);
    const read = async (deliveryId: string) => {
      const got = await callbacksFor(deliveryId, 2);
      expect(got.map((c) => c.params.MessageStatus)).toEqual(['sent', expect.any(String)]);
      for (const c of got) expect(verifyTwilioCallback(token, c.signature, c.url, c.params)).toBe(true);
      const last = got[1]!;
      expect(verifyTwilioCallback(token, last.signature, last.url, { ...last.params, MessageStatus: 'delivered', ErrorCode: '' })).toBe(false);
      expect(twilioReceipt(got[0]!.params, new URL(got[0]!.url).searchParams.get('r'))).toBeNull();
      return twilioReceipt(last.params, new URL(last.url).searchParams.get('r'));
    };
    expect(await read('ok')).toEqual({ ref: ref('ok'), status: 'delivered', providerStatus: 'delivered' });
    expect(await read('lost')).toEqual({ ref: ref('lost'), status: 'bounced', providerStatus: 'undelivered', errorCode: expect.stringMatching(/^\d+$/) });
  });

  it('signs in with an API key of the account (twilio(apiKeySid, apiKeySecret, { accountSid }))', async () => {
    const inst = sandbox.instance('twilio');
    const c = sandbox.credentials.twilio;
    const apiKey = { sid: 'SK' + 'ab'.repeat(16), secret: 'an-api-key-secret-of-32-characters' };
    const id = inst.registerCredential({ accountSid: c.accountSid, apiKeySid: apiKey.sid, apiKeySecret: apiKey.secret });
    const keyed = new TwilioProvider({ accountSid: c.accountSid, apiKey, from: c.from, baseUrl: sandbox.endpoints.twilio!.url, ca: sandbox.ca });
    try {
      const [out] = await keyed.send([{ deliveryId: 'k1', address: '+4915112345678', text: 't', expiresAt: EXPIRES }]);
      expect(out).toMatchObject({ outcome: 'accepted' });
      expect(inst.count({ credential: id })).toBe(1);
      inst.revokeCredential(id);
      const err = await keyed.send([{ deliveryId: 'k2', address: '+4915112345678', text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect((err as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'k2', outcome: 'transient', reason: 'twilio 20003', credentialsRejected: true }]);
    } finally {
      await keyed.close();
    }
    expect(() => new TwilioProvider({ accountSid: c.accountSid, from: c.from })).toThrow(/authToken or apiKey/);
  });

  it('keeps the number out of the reason: Twilio’s code and our words only', async () => {
    const out = (
      await Promise.all([
        sms.send([{ deliveryId: 'inv', address: '+15005550001', text: 't', expiresAt: EXPIRES }]),
        sms.send([{ deliveryId: 'nope', address: '+15005550009', text: 't', expiresAt: EXPIRES }]),
      ])
    ).flat();
    expect(out).toEqual([
      { deliveryId: 'inv', outcome: 'permanent', invalidDevice: true, reason: 'twilio 400 21211: invalid number' },
      { deliveryId: 'nope', outcome: 'permanent', invalidDevice: true, reason: 'twilio 400 21614: not a mobile number' },
    ]);
  });

  it('sends many concurrently', async () => {
    const out = (await Promise.all(Array.from({ length: 200 }, (_, i) => sms.send([{ deliveryId: `b${i}`, address: `+1415555${String(i).padStart(4, '0')}`, text: 't', expiresAt: EXPIRES }])))).flat();
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('twilio').count()).toBe(200);
  });

  it('maps 21211 invalid number and 21610 unsubscribed to permanent + invalidDevice', async () => {
    sandbox.instance('twilio').addPermanentFailures(['+4915100000001']);
    const out = (
      await Promise.all([
        sms.send([{ deliveryId: 'magic', address: '+15005550001', text: 't', expiresAt: EXPIRES }]),
        sms.send([{ deliveryId: 'listed', address: '+4915100000001', text: 't', expiresAt: EXPIRES }]),
      ])
    ).flat();
    expect(out).toEqual([
      expect.objectContaining({ deliveryId: 'magic', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('400 21211') }),
      expect.objectContaining({ deliveryId: 'listed', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('400 21610') }),
    ]);
  });

  it('maps 429 to transient with retryAfterMs from Retry-After', async () => {
    sandbox.instance('twilio').setFaults({ rateLimitPerSecond: 0.5, rateLimitBurst: 1 });
    const out = (await Promise.all([1, 2].map((i) => sms.send([{ deliveryId: `r${i}`, address: '+4915112345678', text: 't', expiresAt: EXPIRES }])))).flat();
    expect(out.map((o) => o.outcome).sort()).toEqual(['accepted', 'transient']);
    expect(out.find((o) => o.outcome === 'transient')).toMatchObject({ reason: expect.stringContaining('429 20429'), retryAfterMs: 2000 });
  });

  it('rejects with transient outcomes on 5xx, outage, hang and bad credentials', async () => {
    const inst = sandbox.instance('twilio');
    const msg = [{ deliveryId: 'x', address: '+4915112345678', text: 't', expiresAt: EXPIRES }];
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
      const refused = await wrong.send(msg).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ProviderUnavailableError);
      expect((refused as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'x', outcome: 'transient', reason: 'twilio 20003', credentialsRejected: true }]);
    } finally {
      await wrong.close();
    }
    expect(inst.count()).toBe(0);
  });
});
