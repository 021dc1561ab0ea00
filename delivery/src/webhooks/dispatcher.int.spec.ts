import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { AnyEvent, RecordedEvent } from '#schema/events';
import { streams } from '#schema/streams';
import type { WebhookEventType } from '#schema/webhooks';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { openSqliteLeaseStore } from '#platform/lease/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { manualClock } from '#platform/clock';
import { randomIds } from '#platform/ids';
import { scanFiles } from '#platform/testing/scan';
import { createCommands } from '#command/application';
import { listWebhookAttempts, webhookStatuses } from '#projections/webhooks/queries';
import type { WebhookMessage } from '#projections/webhooks/document';
import { defaultWebhookConfig, type WebhookConfig } from './config';
import { messagesOf } from './messages';
import { startWebhookDispatcher, type WebhookDispatcher } from './index';

const logger = pino({ level: 'silent' });
const actor = { keyId: 'k-admin', requestId: 'r' };
const TENANT = 'acme';
/** Milliseconds instead of seconds and hours: the same code paths, quickly. No rescans: the wake-ups alone must carry every message. */
const FAST: Partial<WebhookConfig> = { retryBaseMs: 5, retryMaxMs: 40, rescanMs: 60_000, requestTimeoutMs: 2_000 };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
};

type Request = Readonly<{
  headers: Record<string, string>;
  body: string;
  verified: boolean;
  /** What the receiver answered: a status, or a dropped connection. */
  answer: number | 'reset';
  ids: readonly string[];
  messages: readonly WebhookMessage[];
}>;

/** A receiver that checks every request's signature with the standardwebhooks package. */
const startReceiver = async () => {
  const requests: Request[] = [];
  const state = { secret: '', answer: (): number | 'reset' => 204, delayMs: 0 };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      let verified = false;
      let messages: WebhookMessage[] = [];
      try {
        messages = new Webhook(state.secret).verify(body, headers) as WebhookMessage[];
        verified = true;
      } catch {
        verified = false;
      }
      const answer = state.answer();
      if (state.delayMs) await sleep(state.delayMs);
      requests.push({ headers, body, verified, answer, ids: messages.map((m) => m.id), messages });
      if (answer === 'reset') req.socket.destroy();
      else res.writeHead(answer).end('receiver text that must never be stored');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    state,
    /** Messages acknowledged with 2xx, in the order they were acknowledged. */
    acknowledged: () => requests.filter((r) => typeof r.answer === 'number' && r.answer < 300).flatMap((r) => r.ids),
    /** Every message id received, first receipts only, in order. */
    firstReceipts: () => [...new Set(requests.flatMap((r) => r.ids))],
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
};
type Receiver = Awaited<ReturnType<typeof startReceiver>>;

const setup = async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'webhooks-'));
  const clock = manualClock(new Date());
  const master = randomBytes(32);
  /** A process's own connections to the shared files. */
  const open = () => {
    const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const readStore = openSqliteReadStore({ path: path.join(dir, 'read.db') });
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    const cipher = new PersonalDataCipher(vault, master);
    return { eventStore, readStore, vault, cipher, close: () => Promise.all([eventStore.close(), readStore.close(), vault.close()]) };
  };
  const main = open();
  const commands = createCommands({
    eventStore: main.eventStore,
    cipher: main.cipher,
    clock,
    ids: randomIds,
    eraser: { shred: async () => [] },
    webhookUrls: { allowHttpLocalhost: true },
  });
  const dispatchers: WebhookDispatcher[] = [];
  const receivers: Receiver[] = [];
  const extra: { close: () => Promise<unknown> }[] = [];
  const start = async (config: Partial<WebhookConfig> = {}, stores = main, lease?: { instanceId: string }) => {
    const leases = lease ? openSqliteLeaseStore({ path: path.join(dir, 'read.db') }) : undefined;
    if (leases) extra.push(leases);
    const d = await startWebhookDispatcher({ ...stores, clock, logger, config: { ...defaultWebhookConfig, ...FAST, ...config }, ...(leases ? { leases, instanceId: lease!.instanceId } : {}) });
    dispatchers.push(d);
    return d;
  };
  const receiver = async () => {
    const r = await startReceiver();
    receivers.push(r);
    return r;
  };
  /** Registers an endpoint for the receiver; returns the log position after which it gets messages. */
  const register = async (r: Receiver, events: readonly WebhookEventType[] = ['notification.completed', 'delivery.failed', 'delivery.confirmed', 'device.invalidated', 'user.shredded']) => {
    const { endpoint, secret } = await commands.webhooks.register(actor, TENANT, { url: r.url, events });
    r.state.secret = secret;
    return { endpointId: endpoint.endpointId, secret, after: await main.eventStore.headPosition() };
  };
  const at = () => clock.now().toISOString();
  const append = (stream: string, type: string, data: object, tenantId = TENANT) =>
    main.eventStore.appendToStream(stream, [{ type, data, metadata: { tenantId, actor: 'system', requestId: 'r', at: at() } }]);

  let seq = 0;
  /** `rounds` times: a failed batch, a receipt batch, a completion, an invalidated device, a shredded user. */
  const traffic = async (rounds: number, failuresPerBatch = 3) => {
    for (let i = 0; i < rounds; i++) {
      const n = `n${++seq}`;
      const batch = { notificationId: n, requestedPosition: 1, requestedAt: at() };
      await append(streams.deliveries(TENANT, n, 0), 'DeliveryFailed', {
        ...batch,
        deliveries: Array.from({ length: failuresPerBatch }, (_, j) => ({
          deliveryId: `d-${n}-${j}`, userId: `u${j}`, deviceId: `dv${j}`, channel: 'email', provider: 'smtp', reason: 'smtp rejected 550 <ada.lovelace@example.com> mailbox unavailable',
        })),
      });
      await append(streams.deliveries(TENANT, n, 0), 'DeliveryReceipted', {
        ...batch,
        deliveries: [
          { deliveryId: `d-${n}-a`, userId: 'u1', deviceId: 'dv1', channel: 'sms', provider: 'twilio', status: 'delivered', providerStatus: 'delivered', at: at() },
          { deliveryId: `d-${n}-b`, userId: 'u2', deviceId: 'dv2', channel: 'sms', provider: 'twilio', status: 'bounced', providerStatus: 'undelivered', errorCode: '30003', at: at() },
        ],
      });
      await append(streams.notification(TENANT, n), 'NotificationCompleted', { notificationId: n, succeeded: 1, failed: failuresPerBatch, expired: 0, reachedUsers: 1 });
      await append(streams.user(TENANT, `u${i}`), 'DeviceInvalidated', { userId: `u${i}`, deviceId: `dv${i}`, provider: 'apns', reason: 'apns 410 Unregistered' });
      await append(streams.user(TENANT, `u${i}`), 'UserDataShredded', { userId: `u${i}`, reason: 'erasure-requested', groupIds: [] });
      // Another tenant's events never reach acme's endpoints.
      await append(streams.notification('other', n), 'NotificationCompleted', { notificationId: n, succeeded: 1, failed: 0, expired: 0, reachedUsers: 1 }, 'other');
    }
  };
  /** The ids an endpoint must get, in log order: its tenant's messages of its types after its registration. */
  const expected = async (after: number, types?: readonly WebhookEventType[]) => {
    const events = (await main.eventStore.readAll({ after, maxCount: 1_000_000, tenantId: TENANT })) as readonly RecordedEvent<AnyEvent>[];
    return events.flatMap(messagesOf).filter((m) => !types || types.includes(m.type)).map((m) => m.id);
  };
  return {
    dir, clock, main, open, commands, start, receiver, register, append, traffic, expected,
    track: (c: { close: () => Promise<unknown> }) => extra.push(c),
    close: async () => {
      for (const d of dispatchers) await d.stop();
      for (const r of receivers) await r.close();
      for (const c of extra) await c.close();
      await main.close();
    },
  };
};

/** Every request of a receiver carried the oldest message not yet acknowledged: nothing later went out first. */
const expectStrictOrder = (r: Receiver, ids: readonly string[]) => {
  let acked = 0;
  for (const req of r.requests) {
    expect(req.ids[0], 'each request starts with the oldest unacknowledged message').toBe(ids[acked]);
    expect(req.ids).toEqual(ids.slice(acked, acked + req.ids.length));
    if (typeof req.answer === 'number' && req.answer < 300) acked += req.ids.length;
  }
  expect(acked).toBe(ids.length);
};

describe('webhook dispatcher', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });
  const world = async () => {
    const w = await setup();
    closers.push(w.close);
    return w;
  };

  it('sends every message once, signed, batched, in log order, to the endpoints subscribed to its type', async () => {
    const w = await world();
    await w.traffic(2); // before any endpoint: never sent
    const all = await w.receiver();
    const failures = await w.receiver();
    const a = await w.register(all);
    const b = await w.register(failures, ['delivery.failed']);
    await w.start({ batchSize: 7 });
    await w.traffic(20);
    const expectAll = await w.expected(a.after);
    const expectFailures = await w.expected(b.after, ['delivery.failed']);
    expect(expectAll).toHaveLength(20 * (3 + 1 + 1 + 1 + 1));
    expect(expectFailures).toHaveLength(60);
    await until('both receivers have everything', () => all.acknowledged().length >= expectAll.length && failures.acknowledged().length >= expectFailures.length);

    expect(all.acknowledged()).toEqual(expectAll);
    expect(failures.acknowledged()).toEqual(expectFailures);
    for (const r of [all, failures]) {
      for (const req of r.requests) {
        expect(req.verified).toBe(true);
        expect(req.ids.length).toBeGreaterThan(0);
        expect(req.ids.length).toBeLessThanOrEqual(7);
        expect(req.headers['webhook-id']).toBe(`batch_${req.ids[0]!.slice(4)}-${req.ids.at(-1)!.slice(4)}`);
        expect(req.headers['content-type']).toBe('application/json');
      }
    }
    expect(failures.requests.flatMap((r) => r.messages).every((m) => m.type === 'delivery.failed' && m.data['tenantId'] === TENANT)).toBe(true);
    const shredded = all.requests.flatMap((r) => r.messages).find((m) => m.type === 'user.shredded')!;
    expect(shredded.data).toEqual({ tenantId: TENANT, userId: expect.any(String), reason: 'erasure-requested' });

    // The endpoint's status is a read model: it catches up with the acknowledgements just after them.
    await until("the endpoint's status has every acknowledgement", async () => (await webhookStatuses(w.main.readStore, TENANT, [a.endpointId])).get(a.endpointId)?.pending === 0);
    const statuses = await webhookStatuses(w.main.readStore, TENANT, [a.endpointId, b.endpointId]);
    expect(statuses.get(a.endpointId)).toMatchObject({ pending: 0, failingSince: null });
    const attempts = await listWebhookAttempts(w.main.readStore, TENANT, a.endpointId, 5);
    expect(attempts).toHaveLength(5);
    expect(attempts[0]).toMatchObject({ ok: true, status: 204, error: null, messages: expect.any(Number) });
    expect(attempts[0]!.n).toBeGreaterThan(attempts[1]!.n);
  });

  it('retries a failing receiver with backoff, sending nothing later first, and delivers everything once it recovers', async () => {
    const w = await world();
    const r = await w.receiver();
    const { after, endpointId } = await w.register(r);
    let calls = 0;
    // 500s, then dropped connections, then healthy.
    r.state.answer = () => (++calls <= 6 ? 500 : calls <= 10 ? 'reset' : 204);
    await w.start({ batchSize: 10 });
    await w.traffic(3);
    await until('the receiver failed ten times', () => r.requests.length >= 10);
    await w.traffic(5);
    const ids = await w.expected(after);
    await until('everything acknowledged', () => r.acknowledged().length >= ids.length);
    expectStrictOrder(r, ids);
    expect(r.requests.filter((q) => q.answer === 500)).toHaveLength(6);
    expect(r.requests.every((q) => q.verified)).toBe(true);

    const attempts = [...(await listWebhookAttempts(w.main.readStore, TENANT, endpointId, 100))].reverse();
    expect(attempts.slice(0, 6).map((a) => [a.status, a.error])).toEqual(Array(6).fill([500, 'http-500']));
    expect(attempts.slice(6, 10).every((a) => a.status === null && a.error !== null && !a.ok)).toBe(true);
    expect(attempts.at(-1)).toMatchObject({ ok: true, status: 204 });
    expect(JSON.stringify(attempts)).not.toContain('receiver text');
    await until('the streak is over', async () => (await webhookStatuses(w.main.readStore, TENANT, [endpointId])).get(endpointId)!.failingSince === null);
  });

  it('loses nothing when the dispatcher stops mid-way and another process takes over the same stores', async () => {
    const w = await world();
    const r = await w.receiver();
    const { after } = await w.register(r);
    r.state.delayMs = 15;
    const first = await w.start({ batchSize: 5 });
    await w.traffic(10);
    await until('some requests arrived', () => r.acknowledged().length >= 10);
    await first.stop(); // mid-way: an answer in flight is abandoned, its messages stay in the outbox
    const sentBefore = r.acknowledged().length;
    await w.traffic(5); // appended while nobody dispatches
    const ids = await w.expected(after);
    expect(sentBefore).toBeLessThan(ids.length);

    const other = w.open();
    w.track(other);
    r.state.delayMs = 0;
    await w.start({ batchSize: 5 }, other);
    await until('everything arrived', () => new Set(r.requests.filter((q) => q.answer === 204).flatMap((q) => q.ids)).size >= ids.length);
    // At least once, in order: the first receipt of each message follows the log.
    expect(r.firstReceipts()).toEqual(ids);
    expect(r.requests.every((q) => q.verified)).toBe(true);
  });

  it('dispatches from one process at a time where several hold the lease store, and the other takes over', async () => {
    const w = await world();
    const r = await w.receiver();
    const { after } = await w.register(r);
    const other = w.open();
    w.track(other);
    const a = await w.start({ leaseTtlMs: 300, batchSize: 5 }, w.main, { instanceId: 'a' });
    const b = await w.start({ leaseTtlMs: 300, batchSize: 5 }, other, { instanceId: 'b' });
    expect([a.active, b.active]).toEqual([true, false]);
    await w.traffic(4);
    await until('the first messages', () => r.acknowledged().length >= (4 * 7) / 2);
    await a.stop();
    await until('the other process leads', () => b.active, 5_000);
    await w.traffic(2);
    const ids = await w.expected(after);
    await until('everything', () => new Set(r.acknowledged()).size >= ids.length);
    expect(r.firstReceipts()).toEqual(ids);
  });

  it('signs so that a tampered request, or another secret, fails verification', async () => {
    const w = await world();
    const r = await w.receiver();
    const { secret } = await w.register(r, ['notification.completed']);
    await w.start();
    await w.traffic(1);
    await until('a request', () => r.requests.length >= 1);
    const { body, headers } = r.requests[0]!;
    expect(() => new Webhook(secret).verify(body, headers)).not.toThrow();
    const tampered = body.replace('"succeeded":1', '"succeeded":9');
    expect(tampered).not.toBe(body);
    expect(() => new Webhook(secret).verify(tampered, headers)).toThrow(WebhookVerificationError);
    const signature = headers['webhook-signature']!;
    const flipped = signature.slice(0, -2) + (signature.at(-2) === 'A' ? 'B' : 'A') + signature.at(-1);
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-signature': flipped })).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'batch_0_0-0_0' })).toThrow(WebhookVerificationError);
    expect(() => new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(body, headers)).toThrow(WebhookVerificationError);
  });

  it('disables an endpoint failing for the configured time, sends it nothing more, and resumes where it stopped once enabled', async () => {
    const w = await world();
    const r = await w.receiver();
    const { after, endpointId } = await w.register(r);
    r.state.answer = () => 503;
    await w.start({ disableAfterMs: 60_000, batchSize: 4 });
    await w.traffic(2);
    await until('a few failures', () => r.requests.length >= 3);
    expect(await disabledEvents(w)).toHaveLength(0);
    w.clock.advance(61_000);
    await until('the endpoint is disabled', async () => (await disabledEvents(w)).length === 1, 5_000);
    const [disabled] = await disabledEvents(w);
    expect(disabled!.data).toMatchObject({ endpointId, reason: 'continuous-failure' });
    expect(Date.parse((disabled!.data as { failingSince: string }).failingSince)).toBeLessThan(w.clock.now().getTime() - 60_000);
    expect((await w.commands.webhooks.list(TENANT))[0]!.disabled).toMatchObject({ reason: 'continuous-failure' });

    const failed = r.requests.length;
    r.state.answer = () => 204;
    await w.traffic(2); // while disabled: queued, not sent
    await sleep(300);
    expect(r.requests.length).toBe(failed);
    expect((await webhookStatuses(w.main.readStore, TENANT, [endpointId])).get(endpointId)!.pending).toBe((await w.expected(after)).length);

    await w.commands.webhooks.enable(actor, TENANT, endpointId);
    const ids = await w.expected(after);
    await until('everything acknowledged after enabling', () => r.acknowledged().length >= ids.length);
    expectStrictOrder(r, ids);
    expect(await disabledEvents(w)).toHaveLength(1);
  });

  it('never sends personal data: no name, address or provider text given for a user reaches the receiver', async () => {
    const w = await world();
    const r = await w.receiver();
    await w.register(r);
    const name = 'Ada Lovelace';
    const email = 'ada.lovelace@example.com';
    const phone = '+821012345678';
    await w.commands.users.register(actor, TENANT, {
      userId: 'u1',
      name,
      consent: { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' },
      devices: [{ kind: 'email', address: email }, { kind: 'sms', address: phone }],
    });
    await w.start();
    await w.traffic(3);
    const ids = await w.expected(0);
    await until('everything', () => r.acknowledged().length >= ids.length);
    const bytes = Buffer.concat(r.requests.map((q) => Buffer.from(JSON.stringify(q.headers) + q.body)));
    for (const needle of [name, 'Lovelace', email, 'example.com', phone, '12345678', 'mailbox unavailable', 'Unregistered', '30003']) {
      expect(bytes.includes(needle), needle).toBe(false);
    }
    // And the signing secret is nowhere in clear: not in the log, the read store or the key vault.
    const { secret } = await w.register(await w.receiver(), ['user.shredded']);
    expect(await scanFiles(w.dir, [secret, secret.slice('whsec_'.length)])).toEqual([]);
  });
});

const disabledEvents = async (w: Awaited<ReturnType<typeof setup>>) =>
  (await w.main.eventStore.readStream(streams.webhooks(TENANT))).filter((e) => e.type === 'WebhookEndpointDisabled');
