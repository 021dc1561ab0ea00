import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { PLATFORM } from '#schema/integrations';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { systemClock } from '#platform/clock';
import { randomIds } from '#platform/ids';
import { IntegrationCommands } from '#command/integration/commands';
import { defaultDeliveryConfig, type ProviderPolicy } from '../config';
import { ProviderUnavailableError } from '../providers/outcomes';
import type { OutboundMessage, Provider, SendOptions, SendOutcome } from '../providers/port';
import { IntegrationRegistry } from './registry';
import { newRound, ProviderRouter } from './router';

const policy: ProviderPolicy = {
  ratePerSecond: 1000,
  concurrency: 10,
  timeoutMs: 100,
  minTimeoutMs: 100,
  timeoutLatencyFactor: 4,
  minStallMs: 1_000,
  stallLatencyFactor: 4,
  errorThresholdPercentage: 50,
  volumeThreshold: 2,
  windowMs: 10_000,
  resetTimeoutMs: 60_000,
  maxBatch: 10,
  messagesPerRequest: 1,
  expectedLatencyMs: 10,
};
const configOf = (p: ProviderPolicy) => ({ ...defaultDeliveryConfig, vendorPolicies: { ...defaultDeliveryConfig.vendorPolicies, twilio: p } });

type Behaviour = (messages: readonly OutboundMessage[], options: SendOptions) => Promise<readonly SendOutcome[]>;
const accept: Behaviour = async (ms) => ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'accepted' }));

const twilio = (name: string, priority = 0) => ({
  name,
  channel: 'sms',
  priority,
  twilio: { accountSid: `AC${crypto.randomBytes(16).toString('hex')}`, authToken: crypto.randomBytes(16).toString('hex'), from: '+15005550006' },
});

const messages = (n: number): OutboundMessage[] => Array.from({ length: n }, (_, i) => ({ deliveryId: `d${i}`, address: `+8210000000${i}`, text: 'hi', expiresAt: Date.now() + 60_000 }));

/** Integrations configured as events, clients standing in for the vendor SDK (their behaviour set per test). */
const setup = async (p: ProviderPolicy = policy) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'router-'));
  const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
  const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
  const cipher = new PersonalDataCipher(vault, crypto.randomBytes(32));
  const integrations = new IntegrationCommands({ eventStore, cipher, clock: systemClock, ids: randomIds });
  const behaviour = new Map<string, Behaviour>();
  const calls = new Map<string, number>();
  /** Integrations whose calls are one request each, whatever they carry (SendGrid's mail/send). */
  const oneRequest = new Set<string>();
  const breakers: string[] = [];
  const registry = new IntegrationRegistry({
    onBreaker: (route, state, reason) => breakers.push(`${route.owner}/${route.name} ${state}: ${reason}`),
    eventStore,
    cipher,
    config: configOf(p),
    logger: pino({ level: 'silent' }),
    clientOf: (i): Provider => ({
      name: `${i.owner}/${i.name}`,
      channel: 'sms',
      maxBatch: 10,
      ...(oneRequest.has(`${i.owner}/${i.name}`) ? { requestsPerCall: () => 1 } : {}),
      send: (ms, options = {}) => {
        const key = `${i.owner}/${i.name}`;
        calls.set(key, (calls.get(key) ?? 0) + 1);
        return (behaviour.get(key) ?? accept)(ms, options);
      },
      close: async () => {},
    }),
  });
  const rejected: string[] = [];
  const router = new ProviderRouter(registry, (route, code) => rejected.push(`${route.owner}/${route.name}:${code}`));
  const configure = (owner: string, input: ReturnType<typeof twilio>) => integrations.configure({ keyId: 'k', requestId: 'r' }, owner, input, { allowEndpoint: false });
  const outcomes = async (tenant: string, n = 2) => (await router.send(tenant, 'sms', messages(n))).sent.flatMap((s) => s.outcomes);
  return {
    registry, router, integrations, behaviour, calls, oneRequest, rejected, breakers, configure, outcomes,
    ready: (...tenants: string[]) => Promise.all(tenants.map((t) => registry.ensure(t))),
    close: async () => {
      await registry.close();
      await eventStore.close();
      await vault.close();
    },
  };
};

describe('routing per tenant over integrations', () => {
  const open: Awaited<ReturnType<typeof setup>>[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  const start = async (p?: ProviderPolicy) => {
    const s = await setup(p);
    open.push(s);
    return s;
  };

  it("sends a tenant's messages through its own integrations by priority, then the platform defaults", async () => {
    const s = await start();
    await s.configure('acme', twilio('second', 5));
    await s.configure('acme', twilio('first', 1));
    await s.configure(PLATFORM, twilio('shared'));
    await s.ready('acme', 'globex');
    expect(s.registry.chain('acme', 'sms')!.map((r) => `${r.owner}/${r.name}`)).toEqual(['acme/first', 'acme/second', 'platform/shared']);
    expect(s.registry.chain('globex', 'sms')!.map((r) => `${r.owner}/${r.name}`)).toEqual(['platform/shared']);
    expect(s.registry.chain('globex', 'email')).toEqual([]);
    expect((await s.router.send('acme', 'sms', messages(3))).sent.map((x) => x.provider)).toEqual(['first']);
    expect((await s.router.send('globex', 'sms', messages(3))).sent.map((x) => x.provider)).toEqual(['shared']);
    expect(await s.router.send('globex', 'email', messages(1))).toMatchObject({ noProvider: true, sent: [] });
    expect(s.router.available('globex', 'email')).toBeNull();
  });

  it("opens only the tenant's own integration when the provider refuses its credentials, and fails it over at once", async () => {
    const s = await start();
    await s.configure('acme', twilio('own'));
    await s.configure('globex', twilio('own'));
    await s.configure(PLATFORM, twilio('shared'));
    await s.ready('acme', 'globex');
    s.behaviour.set('acme/own', async (ms) => {
      throw new ProviderUnavailableError('own', ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient', reason: 'twilio 20003', credentialsRejected: true })));
    });
    const first = await s.outcomes('acme', 1);
    expect(first).toEqual([{ deliveryId: 'd0', outcome: 'transient', reason: 'twilio 20003', credentialsRejected: true }]);
    expect(s.rejected).toEqual(['acme/own:twilio 20003']);
    expect(s.router.state('acme', 'own')).toBe('open');
    expect(s.router.state('globex', 'own')).toBe('closed');
    expect((await s.router.send('acme', 'sms', messages(2))).sent.map((x) => x.provider)).toEqual(['shared']);
    expect((await s.router.send('globex', 'sms', messages(2))).sent.map((x) => x.provider)).toEqual(['own']);
    expect(s.calls.get('acme/own')).toBe(1);
  });

  it('opens every integration of a vendor endpoint failing for several of them, not for one failing alone', async () => {
    const s = await start();
    const tenants = ['t-a', 't-b', 't-c', 't-d'];
    for (const t of tenants) await s.configure(t, twilio('own'));
    await s.ready(...tenants);
    const outage: Behaviour = async (ms) => {
      throw new ProviderUnavailableError('own', ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient', reason: '503' })));
    };
    // One tenant's integration failing alone opens its breaker only.
    s.behaviour.set('t-a/own', outage);
    for (let i = 0; i < 4; i++) await s.outcomes('t-a', 1);
    expect(s.router.state('t-a', 'own')).toBe('open');
    expect(s.registry.chain('t-d', 'sms')![0]!.health.opened).toBe(false);
    // Then the vendor fails for two more: every integration of it is skipped, even one that sent nothing yet.
    for (const t of ['t-b', 't-c']) s.behaviour.set(`${t}/own`, outage);
    for (let i = 0; i < 2; i++) for (const t of ['t-b', 't-c']) await s.outcomes(t, 1);
    expect(s.registry.chain('t-d', 'sms')![0]!.health.opened).toBe(true);
    expect(s.router.state('t-d', 'own')).toBe('open');
    expect(s.router.available('t-d', 'sms')).toBe(0);
    expect((await s.router.send('t-d', 'sms', messages(1))).sent).toEqual([]);
    expect(s.calls.get('t-d/own')).toBeUndefined();
  });

  it('lets a dispatch round claim a shared integration\'s room once, whichever tenants ask for it', async () => {
    const s = await start();
    await s.configure('acme', twilio('own'));
    await s.configure(PLATFORM, twilio('shared'));
    await s.ready('acme', 'globex', 'initech');
    // Ten slots each (the policy's concurrency), tokens to spare.
    const round = newRound();
    const claims = (tenant: string, n: number, r = round) => Array.from({ length: n }, () => s.router.claim(tenant, 'sms', r)).filter(Boolean).length;
    expect(claims('globex', 6)).toBe(6);
    // Another tenant on the same platform integration gets what is left of it, not ten more.
    expect(claims('initech', 6)).toBe(4);
    expect(s.router.claim('initech', 'sms', round)).toBe(false);
    // A tenant with an integration of its own has that first, then nothing of the spent default.
    expect(claims('acme', 12)).toBe(10);
    expect(s.router.claim('globex', 'email', round)).toBeNull();
    // The next round sees the room again.
    expect(claims('initech', 12, newRound())).toBe(10);
    expect(s.router.available('globex', 'sms')).toBe(10);
  });

  it("never counts one tenant's refused credentials against the vendor", async () => {
    const s = await start();
    for (const t of ['t-a', 't-b', 't-c']) await s.configure(t, twilio('own'));
    await s.ready('t-a', 't-b', 't-c');
    const refused: Behaviour = async (ms) => {
      throw new ProviderUnavailableError('own', ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient', reason: 'twilio 20003', credentialsRejected: true })));
    };
    for (const t of ['t-a', 't-b']) s.behaviour.set(`${t}/own`, refused);
    for (let i = 0; i < 5; i++) for (const t of ['t-a', 't-b']) await s.outcomes(t, 1);
    expect(s.registry.chain('t-c', 'sms')![0]!.health.opened).toBe(false);
    expect((await s.router.send('t-c', 'sms', messages(1))).sent.map((x) => x.provider)).toEqual(['own']);
  });

  it('marks messages of a call given up at its deadline as maybe delivered when the client does not answer the cancellation', async () => {
    const s = await start();
    await s.configure('acme', twilio('slow'));
    await s.ready('acme');
    s.behaviour.set('acme/slow', (ms) => new Promise((done) => setTimeout(() => done(ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'accepted' }))), 1_000)));
    const started = Date.now();
    expect(await s.outcomes('acme')).toEqual([
      { deliveryId: 'd0', outcome: 'transient', reason: 'slow: deadline of 100 ms passed, no answer to the cancellation', maybeDelivered: true },
      { deliveryId: 'd1', outcome: 'transient', reason: 'slow: deadline of 100 ms passed, no answer to the cancellation', maybeDelivered: true },
    ]);
    // The deadline and a short grace for the client to report, not the client's own second.
    expect(Date.now() - started).toBeLessThan(700);
  });

  it("aborts the call's signal at its deadline, keeps what the client reports, and counts the call as failed", async () => {
    const s = await start();
    await s.configure('acme', twilio('hung'));
    await s.ready('acme');
    const seen: AbortSignal[] = [];
    // A client that honours the cancellation: one message was answered, one never written, one lost on the wire.
    s.behaviour.set('acme/hung', (ms, { signal }) => {
      seen.push(signal!);
      return new Promise((done) =>
        signal!.addEventListener('abort', () =>
          done([
            { deliveryId: ms[0]!.deliveryId, outcome: 'accepted' },
            { deliveryId: ms[1]!.deliveryId, outcome: 'transient', reason: 'never sent' },
            { deliveryId: ms[2]!.deliveryId, outcome: 'transient', reason: 'answer abandoned', maybeDelivered: true },
          ]),
        ),
      );
    });
    const first = await s.outcomes('acme', 3);
    expect(seen[0]!.aborted).toBe(true);
    expect(String((seen[0]!.reason as Error).message)).toBe('deadline of 100 ms passed');
    expect(first.map((o) => (o.outcome === 'transient' ? `${o.outcome}${o.maybeDelivered ? ' maybe' : ''}` : o.outcome))).toEqual(['accepted', 'transient', 'transient maybe']);
    await s.outcomes('acme', 3);
    expect(s.router.state('acme', 'hung')).toBe('open');
  });

  /** Deadlines of 10 s; a stall after 300 ms of silence with two requests waiting. */
  const stallPolicy: ProviderPolicy = { ...policy, timeoutMs: 10_000, minTimeoutMs: 10_000, minStallMs: 300, stallLatencyFactor: 3, volumeThreshold: 2 };
  /** A call of one message at a time until the route knows its typical latency (the first calls are not samples). */
  const warm = async (s: Awaited<ReturnType<typeof setup>>, tenant: string) => {
    for (let i = 0; i < 12; i++) await s.outcomes(tenant, 1);
  };

  it('opens the breaker of an integration that stops answering and cancels its calls long before their deadline; the next one takes over', async () => {
    const s = await start(stallPolicy);
    await s.configure('acme', twilio('hung', 0));
    await s.configure('acme', twilio('spare', 1));
    await s.ready('acme');
    await warm(s, 'acme');
    expect(s.registry.route('acme', 'hung')!.deadlines.stallMs()).toBe(300);
    const seen: AbortSignal[] = [];
    // Reads the requests, never answers; reports them abandoned once cancelled.
    s.behaviour.set('acme/hung', (ms, { signal }) => {
      seen.push(signal!);
      return new Promise((done) =>
        signal!.addEventListener('abort', () => done(ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient' as const, reason: `hung: ${(signal!.reason as Error).message}, answer abandoned`, maybeDelivered: true as const })))),
      );
    });
    const started = performance.now();
    const result = await s.router.send('acme', 'sms', messages(3));
    const first = result.sent.flatMap((x) => x.outcomes);
    const took = performance.now() - started;
    // The spare takes the cancelled messages now: retried at once, not after a backoff.
    expect(result.sent.map((x) => [x.provider, x.elsewhere])).toEqual([['hung', true]]);
    expect(took).toBeGreaterThanOrEqual(300);
    expect(took).toBeLessThan(1_000);
    expect((seen[0]!.reason as Error).name).toBe('Stalled');
    expect(first).toHaveLength(3);
    for (const o of first) expect(o).toMatchObject({ outcome: 'transient', maybeDelivered: true, reason: expect.stringMatching(/^hung: no answer from the provider for \d+ ms, answer abandoned$/) });
    expect(s.router.state('acme', 'hung')).toBe('open');
    expect(s.breakers).toEqual([expect.stringMatching(/^acme\/hung open: no answer from the provider for \d+ ms: calls cancelled$/)]);
    expect((await s.router.send('acme', 'sms', messages(2))).sent.map((x) => x.provider)).toEqual(['spare']);
  });

  it('judges a hung batch provider by the messages its calls carry, not by its few requests', async () => {
    const s = await start(stallPolicy);
    s.oneRequest.add('acme/bulk');
    await s.configure('acme', twilio('bulk', 0));
    await s.configure('acme', twilio('spare', 1));
    await s.ready('acme');
    await warm(s, 'acme');
    s.behaviour.set('acme/bulk', (ms, { signal }) =>
      new Promise((done) => signal!.addEventListener('abort', () => done(ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient' as const, reason: 'abandoned', maybeDelivered: true as const }))))),
    );
    // One request of three messages: stalled after 300 ms, long before its 10 s deadline.
    const started = performance.now();
    const first = await s.outcomes('acme', 3);
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(first.map((o) => o.outcome)).toEqual(['transient', 'transient', 'transient']);
    expect(s.router.state('acme', 'bulk')).toBe('open');
    expect(s.breakers).toEqual([expect.stringMatching(/^acme\/bulk open: no answer from the provider for \d+ ms: calls cancelled$/)]);
  });

  it("never makes a message the half-open probe of the integration its last attempt failed on", async () => {
    const s = await start({ ...policy, resetTimeoutMs: 100 });
    await s.configure('acme', twilio('primary', 0));
    await s.configure('acme', twilio('spare', 1));
    await s.ready('acme');
    s.registry.route('acme', 'primary')!.breaker.open();
    await new Promise((r) => setTimeout(r, 150));
    expect(s.router.state('acme', 'primary')).toBe('half-open');
    const lastOn = (failed: Record<string, string>) => (id: string) => failed[id] ?? null;
    // Alone, retried after failing on the primary: it goes to the spare, and the primary stays unprobed.
    const alone = await s.router.send('acme', 'sms', messages(1), lastOn({ d0: 'primary' }));
    expect(alone.sent.map((x) => [x.provider, x.outcomes.map((o) => o.deliveryId)])).toEqual([['spare', ['d0']]]);
    expect(s.calls.get('acme/primary')).toBeUndefined();
    expect(s.router.state('acme', 'primary')).toBe('half-open');
    // With a fresh message beside it, the fresh one is the probe.
    const two = await s.router.send('acme', 'sms', messages(2), lastOn({ d0: 'primary' }));
    expect(two.sent.map((x) => [x.provider, x.outcomes.map((o) => o.deliveryId)]).sort()).toEqual([['primary', ['d1']], ['spare', ['d0']]]);
    expect(s.router.state('acme', 'primary')).toBe('closed');
  });

  it('leaves a batch call alone while its requests keep answering, however long the whole call takes', async () => {
    const s = await start(stallPolicy);
    await s.configure('acme', twilio('batch'));
    await s.ready('acme');
    await warm(s, 'acme');
    // Ten requests answered one every 100 ms: the call takes a second, the integration is never silent for 300 ms.
    s.behaviour.set('acme/batch', async (ms, { onAnswer }) => {
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 100));
        onAnswer?.();
      }
      return ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'accepted' as const }));
    });
    const outcomes = await s.outcomes('acme', 5);
    expect(outcomes.map((o) => o.outcome)).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'accepted']);
    expect(s.router.state('acme', 'batch')).toBe('closed');
  });

  it('counts requests in flight until the client settles, as many as the client makes a call', async () => {
    const s = await start();
    await s.configure('acme', twilio('batch'));
    await s.ready('acme');
    const route = s.registry.route('acme', 'batch')!;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    s.behaviour.set('acme/batch', async (ms) => {
      await gate;
      return ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'accepted' as const }));
    });
    // One request per message by default: 10 slots take 10 messages, the rest wait.
    const sending = s.router.send('acme', 'sms', messages(15));
    expect(route.inFlight).toBe(10);
    expect(s.router.available('acme', 'sms')).toBe(0);
    release();
    const result = await sending;
    expect(result.sent.flatMap((x) => x.outcomes)).toHaveLength(10);
    expect(result.unsent).toHaveLength(5);
    await new Promise((r) => setImmediate(r));
    expect(route.inFlight).toBe(0);
  });

  it('derives the deadline from the latency of recent calls, within the floor and the configured timeout', async () => {
    const s = await start();
    await s.configure('acme', twilio('derived'));
    await s.ready('acme');
    const route = s.registry.route('acme', 'derived')!;
    // Too few calls seen: the configured timeout.
    expect(route.deadlines.timeoutMs()).toBe(100);
    for (let i = 0; i < 10; i++) route.deadlines.record(10);
    expect(route.deadlines.timeoutMs()).toBe(100); // 4 x 10 ms is below the floor
  });

  it('tells a refused connection (never sent) from a reset one (maybe sent)', async () => {
    const s = await start();
    await s.configure('acme', twilio('refused'));
    await s.configure('globex', twilio('reset'));
    await s.ready('acme', 'globex');
    const failWith = (code: string): Behaviour => async () => {
      throw Object.assign(new Error(`connect ${code} 127.0.0.1:1`), { code });
    };
    s.behaviour.set('acme/refused', failWith('ECONNREFUSED'));
    s.behaviour.set('globex/reset', failWith('ECONNRESET'));
    expect((await s.outcomes('acme', 1))[0]).toEqual({ deliveryId: 'd0', outcome: 'transient', reason: 'connect ECONNREFUSED 127.0.0.1:1' });
    expect((await s.outcomes('globex', 1))[0]).toEqual({ deliveryId: 'd0', outcome: 'transient', reason: 'connect ECONNRESET 127.0.0.1:1', maybeDelivered: true });
  });

  it('once the breaker is open, sends to the next integration and never marks the skipped one as maybe delivered', async () => {
    const s = await start();
    await s.configure('acme', twilio('down', 0));
    await s.configure('acme', twilio('up', 1));
    await s.ready('acme');
    s.behaviour.set('acme/down', async (ms) => ms.map((m) => ({ deliveryId: m.deliveryId, outcome: 'transient', reason: '503' })));
    await s.outcomes('acme', 1);
    await s.outcomes('acme', 1);
    expect(s.router.state('acme', 'down')).toBe('open');
    const result = await s.router.send('acme', 'sms', messages(3));
    expect(s.calls.get('acme/down')).toBe(2);
    expect(result.sent.map((x) => x.provider)).toEqual(['up']);
    expect(result.sent[0]!.outcomes.every((o) => o.outcome === 'accepted')).toBe(true);
  });

  it('builds an integration again when it is configured again, and drops a removed one', async () => {
    const s = await start();
    await s.configure('acme', twilio('own'));
    await s.ready('acme');
    const before = s.registry.route('acme', 'own');
    await s.configure('acme', twilio('own'));
    await s.ready('acme');
    expect(s.registry.route('acme', 'own')).not.toBe(before);
    await s.integrations.remove({ keyId: 'k', requestId: 'r' }, 'acme', 'own');
    await s.ready('acme');
    expect(s.registry.chain('acme', 'sms')).toEqual([]);
  });
});
