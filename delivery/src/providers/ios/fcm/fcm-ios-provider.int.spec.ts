import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { FcmIosProvider } from './fcm-ios-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

const token = (n: number) => `ios${n}:APA91b${'y'.repeat(40)}`;

describe('FcmIosProvider (firebase-admin → sandbox FCM, APNs headers for iOS devices)', () => {
  let sandbox: Sandbox;
  let fcm: FcmIosProvider;

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'fcm-ios', kind: 'fcm', project: 'notify-ios' }] });
    const ep = sandbox.endpoints['fcm-ios']!;
    fcm = new FcmIosProvider({
      projectId: 'notify-ios',
      credentials: { type: 'accessToken', accessToken: sandbox.credentials.fcmAccessToken },
      redirect: { host: ep.host, port: ep.port, ca: sandbox.ca },
      quotaRetryAfterMs: 2000,
      timeoutMs: 3000,
    });
  });
  afterAll(async () => {
    await fcm.close();
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('is the iOS channel provider "fcm-ios" with batches of 500', () => {
    expect(fcm).toMatchObject({ name: 'fcm-ios', channel: 'ios', maxBatch: 500 });
  });

  it('delivers with the delivery id as apns-collapse-id (hashed past 64 bytes)', async () => {
    const long = 'n'.repeat(80);
    const out = await fcm.send([
      { deliveryId: 'n1:u1:d1', address: token(1), text: 'Hello via FCM', expiresAt: EXPIRES },
      { deliveryId: long, address: token(2), text: 'Long id', expiresAt: EXPIRES },
    ]);
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    const recs = sandbox.instance('fcm-ios').accepted();
    expect(recs.find((r) => r.address === token(1))).toMatchObject({ text: 'Hello via FCM', collapseId: 'n1:u1:d1', deliveryId: 'n1:u1:d1' });
    const second = recs.find((r) => r.address === token(2))!;
    expect(second.collapseId).toHaveLength(43);
    expect(second.deliveryId).toBe(long);
  });

  it('maps UNREGISTERED to permanent + invalidDevice and 429 to transient with retryAfterMs', async () => {
    const inst = sandbox.instance('fcm-ios');
    inst.addPermanentFailures([token(3)]);
    inst.setFaults({ rateLimitPerSecond: 2, rateLimitBurst: 2 });
    const out = await fcm.send([
      { deliveryId: 'a', address: token(1), text: 't', expiresAt: EXPIRES },
      { deliveryId: 'b', address: token(3), text: 't', expiresAt: EXPIRES },
      { deliveryId: 'c', address: token(4), text: 't', expiresAt: EXPIRES },
    ]);
    expect(out.filter((o) => o.outcome === 'permanent' || o.outcome === 'accepted')).toHaveLength(2);
    expect(out.find((o) => o.deliveryId === 'b')).toMatchObject({ outcome: 'permanent', invalidDevice: true });
    const limited = out.filter((o) => o.outcome === 'transient');
    // The 429's own Retry-After (1 s), read off the response firebase-admin drops; not the configured fallback.
    expect(limited).toEqual([expect.objectContaining({ retryAfterMs: 1000 })]);
  });

  it('passes the deadline as the apns-expiration header FCM relays (epoch seconds)', async () => {
    const expiresAt = Date.now() + 120_500;
    const [out] = await fcm.send([{ deliveryId: 'exp', address: token(5), text: 't', expiresAt }]);
    expect(out).toMatchObject({ outcome: 'accepted' });
    expect(sandbox.instance('fcm-ios').accepted({ deliveryId: 'exp' })).toEqual([expect.objectContaining({ expiration: Math.floor(expiresAt / 1000) })]);
  });

  it('rejects when the sandbox is out', async () => {
    sandbox.instance('fcm-ios').setFaults({ outage: true, retryAfterSeconds: 120 });
    await expect(fcm.send([{ deliveryId: 'x', address: token(1), text: 't', expiresAt: EXPIRES }])).rejects.toThrow(ProviderUnavailableError);
  });
});
