import crypto from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { ApnsProvider } from './apns-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

const token = (n: number) => n.toString(16).padStart(64, 'a');

describe('ApnsProvider (@parse/node-apn → sandbox APNs over HTTP/2)', () => {
  let sandbox: Sandbox;
  let apns: ApnsProvider;

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'apns', kind: 'apns' }] });
    const ep = sandbox.endpoints.apns!;
    apns = new ApnsProvider({
      token: sandbox.credentials.apns,
      topic: sandbox.credentials.apns.topic,
      address: ep.host,
      port: ep.port,
      ca: sandbox.ca,
      requestTimeoutMs: 500,
    });
  });
  afterAll(async () => {
    await apns.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('delivers with the delivery id as apns-collapse-id, and a resend collapses onto it', async () => {
    const msg = { deliveryId: 'n1:u1:d1', address: token(1), text: 'Hello iOS ✓', expiresAt: EXPIRES };
    const [out] = await apns.send([msg]);
    expect(out).toMatchObject({ deliveryId: 'n1:u1:d1', outcome: 'accepted' });
    expect(out!.outcome === 'accepted' && out!.providerMessageId).toMatch(/^[0-9a-f-]{36}$/);
    await apns.send([msg]);
    const inst = sandbox.instance('apns');
    expect(inst.accepted()).toEqual([
      expect.objectContaining({ address: token(1), text: 'Hello iOS ✓', collapseId: 'n1:u1:d1', deliveryId: 'n1:u1:d1' }),
      expect.objectContaining({ address: token(1), collapseId: 'n1:u1:d1' }),
    ]);
    expect(inst.count({ address: token(1) })).toBe(2);
  });

  it('sends the deadline as apns-expiration (epoch seconds)', async () => {
    const expiresAt = Date.now() + 600_700;
    await apns.send([{ deliveryId: 'exp', address: token(6), text: 't', expiresAt }]);
    expect(sandbox.instance('apns').accepted({ deliveryId: 'exp' })).toEqual([expect.objectContaining({ expiration: Math.floor(expiresAt / 1000) })]);
  });

  it('reports a signing key APNs refuses as rejected credentials (InvalidProviderToken), not a bad device', async () => {
    const ep = sandbox.endpoints.apns!;
    const otherKey = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const wrong = new ApnsProvider({
      name: 'apns-wrong-key',
      token: { ...sandbox.credentials.apns, key: otherKey },
      topic: sandbox.credentials.apns.topic,
      address: ep.host,
      port: ep.port,
      ca: sandbox.ca,
      requestTimeoutMs: 2000,
    });
    try {
      const err = await wrong.send([{ deliveryId: 'k', address: token(7), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as ProviderUnavailableError).outcomes).toEqual([
        { deliveryId: 'k', outcome: 'transient', reason: 'InvalidProviderToken', credentialsRejected: true },
      ]);
      expect(sandbox.instance('apns').count()).toBe(0);
    } finally {
      await wrong.close();
    }
  });

  it('hashes a delivery id longer than 64 bytes into a 43-character collapse id', async () => {
    const long = 'x'.repeat(100);
    await apns.send([{ deliveryId: long, address: token(2), text: 't', expiresAt: EXPIRES }]);
    const [rec] = sandbox.instance('apns').accepted();
    expect(rec!.collapseId).toHaveLength(43);
    expect(rec!.deliveryId).toBe(long);
  });

  it('maps BadDeviceToken and Unregistered to permanent + invalidDevice', async () => {
    sandbox.instance('apns').addPermanentFailures([token(3)]);
    const out = await Promise.all([
      apns.send([{ deliveryId: 'bad', address: 'bad-token', text: 't', expiresAt: EXPIRES }]),
      apns.send([{ deliveryId: 'gone', address: token(3), text: 't', expiresAt: EXPIRES }]),
    ]);
    expect(out.flat()).toEqual([
      { deliveryId: 'bad', outcome: 'permanent', reason: 'apns 400 BadDeviceToken', invalidDevice: true },
      { deliveryId: 'gone', outcome: 'permanent', reason: 'apns 410 Unregistered', invalidDevice: true },
    ]);
    expect(sandbox.instance('apns').count()).toBe(0);
  });

  it('maps 429 TooManyRequests to a transient outcome (node-apn does not expose Retry-After)', async () => {
    sandbox.instance('apns').setFaults({ rateLimitPerSecond: 1, rateLimitBurst: 1 });
    const out = (await Promise.all([1, 2, 3].map((i) => apns.send([{ deliveryId: `r${i}`, address: token(i), text: 't', expiresAt: EXPIRES }])))).flat();
    expect(out.filter((o) => o.outcome === 'accepted')).toHaveLength(1);
    expect(out.filter((o) => o.outcome === 'transient')).toEqual([
      expect.objectContaining({ outcome: 'transient', reason: 'apns 429 TooManyRequests' }),
      expect.objectContaining({ outcome: 'transient', reason: 'apns 429 TooManyRequests' }),
    ]);
  });

  it('rejects with ProviderUnavailableError carrying transient outcomes on 5xx and outage', async () => {
    const inst = sandbox.instance('apns');
    inst.setFaults({ errorRate: 1 });
    const err = await apns.send([{ deliveryId: 'e1', address: token(4), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual([
      expect.objectContaining({ deliveryId: 'e1', outcome: 'transient', reason: expect.stringMatching(/^apns 50[03]/) }),
    ]);
    inst.setFaults({ errorRate: 0, outage: true });
    await expect(apns.send([{ deliveryId: 'e2', address: token(4), text: 't', expiresAt: EXPIRES }])).rejects.toThrow(ProviderUnavailableError);
    expect(inst.count()).toBe(0);
  });

  it('times out a hung request into a transient rejection, and recovers', async () => {
    const inst = sandbox.instance('apns');
    inst.setFaults({ hang: true });
    const started = Date.now();
    const err = await apns.send([{ deliveryId: 'h1', address: token(5), text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes[0]).toMatchObject({ maybeDelivered: true });
    expect(Date.now() - started).toBeLessThan(3000);
    inst.setFaults({ hang: false });
    await expect(apns.send([{ deliveryId: 'h2', address: token(5), text: 't', expiresAt: EXPIRES }])).resolves.toEqual([
      expect.objectContaining({ outcome: 'accepted' }),
    ]);
  });

  it('sends many messages concurrently over one HTTP/2 session', async () => {
    const msgs = Array.from({ length: 300 }, (_, i) => ({ deliveryId: `b${i}`, address: token(1000 + i), text: `m${i}`, expiresAt: EXPIRES }));
    const out = (await Promise.all(msgs.map((m) => apns.send([m])))).flat();
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('apns').count()).toBe(300);
    expect(sandbox.instance('apns').count({ deliveryId: 'b299' })).toBe(1);
  });
});
