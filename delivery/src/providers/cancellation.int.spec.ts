import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { sandboxIntegrations } from '#sandbox/integrations';
import { createProvider, type ProviderIntegration } from './integration';
import { ProviderUnavailableError } from './outcomes';
import type { Channel, OutboundMessage, Provider, SendOutcome } from './port';

/*
 * Every adapter, with its real SDK against the sandbox: a call given up is cancelled, and nothing
 * of it reaches the provider afterwards; the SDKs retry nothing themselves.
 */

const EXPIRES = Date.now() + 15 * 60_000;
const ADDRESS: Record<Channel, (i: number) => string> = {
  ios: (i) => `${i}`.padStart(64, 'a'),
  android: (i) => `android:APA91b${'z'.repeat(40)}${i}`,
  email: (i) => `ann${i}@example.com`,
  sms: (i) => `+491511234${`${i}`.padStart(4, '0')}`,
};
const VENDORS = ['apns', 'fcm-primary', 'sendgrid', 'smtp', 'twilio', 'sns'] as const;
/** HTTP/1.1 clients (and SMTP's pool), whose requests can wait for a connection. */
const POOLED = ['fcm-primary', 'sendgrid', 'smtp', 'twilio', 'sns'] as const;

let seq = 0;
const message = (channel: Channel): OutboundMessage => {
  const i = ++seq;
  return { deliveryId: `n:u${i}:d`, address: ADDRESS[channel](i), text: `m${i}`, expiresAt: EXPIRES };
};
const outcomesOf = (p: Promise<readonly SendOutcome[]>): Promise<readonly SendOutcome[]> =>
  p.catch((e: unknown) => {
    if (e instanceof ProviderUnavailableError) return e.outcomes;
    throw e;
  });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cancellation and retries of every adapter, against the sandbox', () => {
  let sandbox: Sandbox;
  let integrations: Map<string, ProviderIntegration>;
  const made: Provider[] = [];
  const make = (name: string, maxSockets = 8): Provider => {
    const p = createProvider(integrations.get(name)!, { timeoutMs: 10_000, maxSockets });
    made.push(p);
    return p;
  };

  beforeAll(async () => {
    sandbox = await startSandbox();
    integrations = new Map(sandboxIntegrations(sandbox).map((i) => [i.name, i as unknown as ProviderIntegration]));
  });
  afterEach(async () => {
    await Promise.all(made.splice(0).map((p) => Promise.race([p.close().catch(() => undefined), sleep(300)])));
    for (const name of VENDORS) sandbox.instance(name).setFaults({ hang: false, outage: false, latencyMs: 0 });
  });
  afterAll(() => sandbox.close());

  it.each(VENDORS)('%s: a signal aborted before the call sends nothing', async (name) => {
    const p = make(name);
    const inst = sandbox.instance(name);
    const before = inst.stats().requests;
    const out = await outcomesOf(p.send([message(p.channel)], { signal: AbortSignal.abort(new Error('given up')) }));
    expect(out).toEqual([expect.objectContaining({ outcome: 'transient' })]);
    expect(out[0]).not.toHaveProperty('maybeDelivered');
    await sleep(100);
    expect(inst.stats().requests).toBe(before);
  });

  it.each(VENDORS)('%s: a hung call settles as soon as it is given up, and nothing of it arrives after', async (name) => {
    const p = make(name);
    const inst = sandbox.instance(name);
    // A connection first, so the hung request is the call's own.
    await outcomesOf(p.send([message(p.channel)]));
    inst.setFaults({ hang: true });
    const before = inst.stats();
    const controller = new AbortController();
    const sending = outcomesOf(p.send([message(p.channel)], { signal: controller.signal }));
    await sleep(200);
    expect(inst.stats().hung).toBe(before.hung + 1);
    const abortedAt = Date.now();
    controller.abort(new Error('deadline of 200 ms passed'));
    const out = await sending;
    expect(Date.now() - abortedAt).toBeLessThan(100);
    expect(out).toEqual([expect.objectContaining({ outcome: 'transient', maybeDelivered: true, reason: expect.stringContaining('deadline of 200 ms passed') })]);
    inst.setFaults({ hang: false });
    await sleep(300);
    expect(inst.stats().requests).toBe(before.requests + 1);
    expect(inst.stats().accepted).toBe(before.accepted);
  });

  it.each(POOLED)('%s: a call waiting for a connection is never written once given up, even when the connection frees up', async (name) => {
    const p = make(name, 1);
    const inst = sandbox.instance(name);
    await outcomesOf(p.send([message(p.channel)]));
    inst.setFaults({ latencyMs: 800 });
    const before = inst.stats();
    const slow = outcomesOf(p.send([message(p.channel)]));
    await sleep(150);
    // The only connection is taken by the slow call: this one waits in the client's queue.
    const controller = new AbortController();
    const waiting = outcomesOf(p.send([message(p.channel)], { signal: controller.signal }));
    await sleep(150);
    expect(inst.stats().requests).toBe(before.requests + 1);
    const abortedAt = Date.now();
    controller.abort(new Error('deadline passed'));
    const unsent = await waiting;
    expect(Date.now() - abortedAt).toBeLessThan(100);
    expect(unsent).toEqual([expect.objectContaining({ outcome: 'transient' })]);
    expect(unsent[0]).not.toHaveProperty('maybeDelivered');
    // The slow answer frees the connection: the call given up must not go out on it.
    expect(await slow).toEqual([expect.objectContaining({ outcome: 'accepted' })]);
    inst.setFaults({ latencyMs: 0 });
    await sleep(400);
    expect(inst.stats().requests).toBe(before.requests + 1);
    expect(inst.stats().accepted).toBe(before.accepted + 1);
    // And the client still works.
    expect(await outcomesOf(p.send([message(p.channel)]))).toEqual([expect.objectContaining({ outcome: 'accepted' })]);
  });

  it.each(VENDORS)('%s: an outage answer is one request, never retried by the SDK, with its Retry-After where sent', async (name) => {
    const p = make(name);
    const inst = sandbox.instance(name);
    await outcomesOf(p.send([message(p.channel)]));
    inst.setFaults({ outage: true, retryAfterSeconds: 2 });
    const before = inst.stats().requests;
    const out = await outcomesOf(p.send([message(p.channel)]));
    await sleep(300);
    expect(out).toEqual([expect.objectContaining({ outcome: 'transient' })]);
    expect(out[0]).not.toHaveProperty('maybeDelivered');
    expect(inst.stats().requests - before).toBe(1);
    // APNs sends no Retry-After, nor does SMTP have one.
    if (name !== 'apns' && name !== 'smtp') expect(out[0]).toMatchObject({ retryAfterMs: 2000 });
    inst.setFaults({ retryAfterSeconds: 1 });
  });
});
