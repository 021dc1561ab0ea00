import { describe, expect, it } from 'vitest';
import type { ProviderPolicy } from './config';
import { ProviderUnavailableError } from './providers/outcomes';
import type { OutboundMessage, Provider, SendOutcome } from './providers/port';
import { ProviderRouter } from './router';

const policy: ProviderPolicy = {
  ratePerSecond: 1000,
  concurrency: 10,
  timeoutMs: 100,
  errorThresholdPercentage: 50,
  volumeThreshold: 2,
  resetTimeoutMs: 60_000,
  maxBatch: 10,
  expectedLatencyMs: 10,
};

/** A provider whose behaviour each test sets: a stand-in for a vendor SDK, to isolate the router. */
const provider = (name: string, send: (messages: readonly OutboundMessage[]) => Promise<readonly SendOutcome[]>): Provider => ({
  name,
  channel: 'sms',
  maxBatch: 10,
  send,
  close: async () => {},
});

const router = (first: Provider, second?: Provider) =>
  new ProviderRouter(second ? [first, second] : [first], {
    chains: { sms: second ? [first.name, second.name] : [first.name] } as never,
    policies: { [first.name]: policy, ...(second ? { [second.name]: policy } : {}) },
  });

const messages = (n: number): OutboundMessage[] => Array.from({ length: n }, (_, i) => ({ deliveryId: `d${i}`, address: `+8210000000${i}`, text: 'hi' }));
const outcomes = async (r: ProviderRouter, n = 2) => (await r.send('sms', messages(n))).sent.flatMap((s) => s.outcomes);

describe('provider router outcomes of a failed call', () => {
  it('marks messages of a call abandoned at the breaker timeout as maybe delivered', async () => {
    const r = router(provider('slow', (ms) => new Promise((done) => setTimeout(() => done(ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'accepted' }))), 300))));
    const out = await outcomes(r);
    expect(out).toEqual([
      { deliveryId: 'd0', outcome: 'transient', reason: 'timed out after 100 ms', maybeDelivered: true },
      { deliveryId: 'd1', outcome: 'transient', reason: 'timed out after 100 ms', maybeDelivered: true },
    ]);
    await r.close();
  });

  it("keeps the adapter's own outcomes when it reports the provider unavailable (retry-after, maybe delivered)", async () => {
    const r = router(
      provider('down', async (ms) => {
        throw new ProviderUnavailableError('down', ms.map((m, i) => (i === 0 ? { deliveryId: m.deliveryId, outcome: 'transient', reason: '503', retryAfterMs: 5000 } : { deliveryId: m.deliveryId, outcome: 'transient', reason: 'reset', maybeDelivered: true })));
      }),
    );
    expect(await outcomes(r)).toEqual([
      { deliveryId: 'd0', outcome: 'transient', reason: '503', retryAfterMs: 5000 },
      { deliveryId: 'd1', outcome: 'transient', reason: 'reset', maybeDelivered: true },
    ]);
    await r.close();
  });

  it('tells a refused connection (never sent) from a reset one (maybe sent)', async () => {
    const failWith = (code: string) => provider(code, async () => {
      throw Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
    });
    const refused = router(failWith('ECONNREFUSED'));
    expect((await outcomes(refused, 1))[0]).toEqual({ deliveryId: 'd0', outcome: 'transient', reason: 'connect ECONNREFUSED 127.0.0.1:1' });
    const reset = router(failWith('ECONNRESET'));
    expect((await outcomes(reset, 1))[0]).toEqual({ deliveryId: 'd0', outcome: 'transient', reason: 'connect ECONNRESET 127.0.0.1:1', maybeDelivered: true });
    await refused.close();
    await reset.close();
  });

  it('once the breaker is open, sends to the next provider and never marks the skipped one as maybe delivered', async () => {
    let calls = 0;
    const down = provider('down', async (ms) => {
      calls++;
      return ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient', reason: '503' }));
    });
    const up = provider('up', async (ms) => ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'accepted' })));
    const r = router(down, up);
    await outcomes(r, 1);
    await outcomes(r, 1);
    expect(r.state('down')).toBe('open');
    const result = await r.send('sms', messages(3));
    expect(calls).toBe(2);
    expect(result.sent.map((s) => s.provider)).toEqual(['up']);
    expect(result.sent[0]!.outcomes.every((o) => o.outcome === 'accepted')).toBe(true);
    await r.close();
  });
});
