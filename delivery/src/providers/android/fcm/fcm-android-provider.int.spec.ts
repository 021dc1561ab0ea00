import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { FcmAndroidProvider } from './fcm-android-provider';

const token = (n: number) => `tok${n}:APA91b${'x'.repeat(40)}`;

describe('FcmAndroidProvider (firebase-admin sendEach → sandbox FCM HTTP v1)', () => {
  let sandbox: Sandbox;
  let primary: FcmAndroidProvider;
  let secondary: FcmAndroidProvider;

  const make = (name: 'fcm-primary' | 'fcm-secondary', timeoutMs = 5000) => {
    const ep = sandbox.endpoints[name]!;
    return new FcmAndroidProvider({
      name,
      projectId: ep.project!,
      sandbox: { host: ep.host, port: ep.port, ca: sandbox.ca, accessToken: sandbox.credentials.fcmAccessToken },
      quotaPerSecond: 100,
      quotaRetryAfterMs: 1000,
      timeoutMs,
    });
  };

  beforeAll(async () => {
    sandbox = await startSandbox({
      instances: [
        { name: 'fcm-primary', kind: 'fcm', project: 'notify-primary' },
        { name: 'fcm-secondary', kind: 'fcm', project: 'notify-secondary' },
      ],
    });
    primary = make('fcm-primary');
    secondary = make('fcm-secondary');
  });
  afterAll(async () => {
    await Promise.all([primary.close(), secondary.close()]);
    await sandbox.close();
  });
  beforeEach(() => sandbox.reset());

  it('delivers with the delivery id as android.collapse_key', async () => {
    const [out] = await primary.send([{ deliveryId: 'n1:u1:d1', address: token(1), text: 'Hello Android' }]);
    expect(out).toMatchObject({ deliveryId: 'n1:u1:d1', outcome: 'accepted', providerMessageId: expect.stringMatching(/^projects\/notify-primary\/messages\//) });
    expect(sandbox.instance('fcm-primary').accepted()).toEqual([
      expect.objectContaining({ address: token(1), text: 'Hello Android', collapseId: 'n1:u1:d1', deliveryId: 'n1:u1:d1' }),
    ]);
    expect(sandbox.instance('fcm-secondary').count()).toBe(0);
  });

  it('sends a full batch of 500 through one sendEach', async () => {
    expect(primary.maxBatch).toBe(500);
    const msgs = Array.from({ length: 500 }, (_, i) => ({ deliveryId: `b${i}`, address: token(i), text: `m${i}` }));
    const out = await primary.send(msgs);
    expect(out.map((o) => o.deliveryId)).toEqual(msgs.map((m) => m.deliveryId));
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('fcm-primary').count()).toBe(500);
    await expect(primary.send([...msgs, msgs[0]!])).rejects.toThrow(RangeError);
  });

  it('maps UNREGISTERED and an invalid token to permanent + invalidDevice, per message', async () => {
    sandbox.instance('fcm-primary').addPermanentFailures([token(2)]);
    const out = await primary.send([
      { deliveryId: 'ok', address: token(1), text: 't' },
      { deliveryId: 'gone', address: token(2), text: 't' },
      { deliveryId: 'bad', address: 'bad-token-0123456789012345678901234567890', text: 't' },
    ]);
    expect(out).toEqual([
      expect.objectContaining({ deliveryId: 'ok', outcome: 'accepted' }),
      expect.objectContaining({ deliveryId: 'gone', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('registration-token-not-registered') }),
      expect.objectContaining({ deliveryId: 'bad', outcome: 'permanent', invalidDevice: true, reason: expect.stringContaining('invalid-argument') }),
    ]);
  });

  it('maps QUOTA_EXCEEDED (429) to transient with retryAfterMs, leaving the rest accepted', async () => {
    sandbox.instance('fcm-primary').setFaults({ rateLimitPerSecond: 5, rateLimitBurst: 5 });
    const msgs = Array.from({ length: 8 }, (_, i) => ({ deliveryId: `q${i}`, address: token(i), text: 't' }));
    const out = await primary.send(msgs);
    expect(out.filter((o) => o.outcome === 'accepted')).toHaveLength(5);
    const limited = out.filter((o) => o.outcome === 'transient');
    expect(limited).toHaveLength(3);
    expect(limited[0]).toMatchObject({ retryAfterMs: 1000, reason: expect.stringContaining('message-rate-exceeded') });
  });

  it('rejects with transient outcomes when the whole batch meets an outage; the second project is unaffected', async () => {
    // Retry-After above 60 s makes firebase-admin give up at once instead of retrying 4 times.
    sandbox.instance('fcm-primary').setFaults({ outage: true, retryAfterSeconds: 120 });
    const msgs = [1, 2, 3].map((i) => ({ deliveryId: `o${i}`, address: token(i), text: 't' }));
    const err = await primary.send(msgs).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailableError);
    expect((err as ProviderUnavailableError).outcomes).toEqual(
      msgs.map((m) => expect.objectContaining({ deliveryId: m.deliveryId, outcome: 'transient', reason: expect.stringContaining('server-unavailable') })),
    );
    const out = await secondary.send(msgs);
    expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
    expect(sandbox.instance('fcm-secondary').accepted()[0]).toMatchObject({ id: expect.stringMatching(/^projects\/notify-secondary\//) });
  });

  it('maps INTERNAL (500) to a transient outcome inside a partly accepted batch', async () => {
    sandbox.instance('fcm-primary').setFaults({ errorRate: 0.5, retryAfterSeconds: 120 });
    const msgs = Array.from({ length: 40 }, (_, i) => ({ deliveryId: `e${i}`, address: token(i), text: 't' }));
    const out = await primary.send(msgs);
    const failed = out.filter((o) => o.outcome === 'transient');
    expect(failed.length).toBeGreaterThan(0);
    expect(out.some((o) => o.outcome === 'accepted')).toBe(true);
    for (const f of failed) expect(f).toMatchObject({ reason: expect.stringMatching(/internal-error|server-unavailable/) });
  });

  it('firebase-admin retries a 503 itself, honouring Retry-After, so a short outage is invisible', async () => {
    const inst = sandbox.instance('fcm-primary');
    inst.setFaults({ outage: true, retryAfterSeconds: 1 });
    setTimeout(() => inst.setFaults({ outage: false }), 300);
    const out = await primary.send([{ deliveryId: 'r1', address: token(1), text: 't' }]);
    expect(out).toEqual([expect.objectContaining({ outcome: 'accepted' })]);
    expect(inst.stats()).toMatchObject({ requests: 2, serverErrors: 1, accepted: 1 });
  });

  it('gives up on a hung sandbox after its own timeout', async () => {
    const quick = make('fcm-primary', 400);
    try {
      sandbox.instance('fcm-primary').setFaults({ hang: true });
      const started = Date.now();
      const err = await quick.send([{ deliveryId: 'h', address: token(1), text: 't' }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as Error).message).toMatch(/no answer within 400 ms/);
      // The request went out: a retry may deliver it twice.
      expect((err as ProviderUnavailableError).outcomes[0]).toMatchObject({ outcome: 'transient', maybeDelivered: true });
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await quick.close();
    }
  });

  it('reports a wrong access token as a provider fault (credentials, not the device)', async () => {
    const ep = sandbox.endpoints['fcm-primary']!;
    const wrong = new FcmAndroidProvider({
      name: 'fcm-wrong',
      projectId: ep.project!,
      sandbox: { host: ep.host, port: ep.port, ca: sandbox.ca, accessToken: 'ya29.wrong' },
    });
    try {
      await expect(wrong.send([{ deliveryId: 'a', address: token(1), text: 't' }])).rejects.toThrow(ProviderUnavailableError);
      expect(sandbox.instance('fcm-primary').stats().unauthorized).toBe(1);
    } finally {
      await wrong.close();
    }
  });
});
