import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@sendgrid/client';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { startSandbox, type Sandbox } from '#sandbox/index';
import { ProviderUnavailableError } from '../../outcomes';
import { encodeReceipt, sendgridReceipts, verifySendgridEvents, type ReceiptRef } from '../../receipts';
import { SendgridProvider } from './sendgrid-provider';

/** The notifications' deadline: a quarter of an hour from now. */
const EXPIRES = Date.now() + 15 * 60_000;

const ref = (deliveryId: string): ReceiptRef => ({
  tenantId: 'acme',
  notificationId: 'n1',
  partition: 0,
  requestedPosition: 7,
  requestedAt: '2026-11-30T12:00:00.000Z',
  deliveryId,
  userId: 'u1',
  deviceId: 'd1',
  channel: 'email',
});

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
      { deliveryId: 'd1', address: 'ann@example.com', text: 'Hello Ann {{not a tag}}', expiresAt: EXPIRES },
      { deliveryId: 'd2', address: 'bob@example.com', text: 'Hallo Bob – ü', expiresAt: EXPIRES },
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
    const msgs = Array.from({ length: 1000 }, (_, i) => ({ deliveryId: `b${i}`, address: `user${i}@example.com`, text: `m${i}`, expiresAt: EXPIRES }));
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
      { deliveryId: 'a', address: 'ann@example.com', text: 't', expiresAt: EXPIRES },
      { deliveryId: 'b', address: 'bad-bob@example.com', text: 't', expiresAt: EXPIRES },
      { deliveryId: 'c', address: 'gone@example.com', text: 't', expiresAt: EXPIRES },
      { deliveryId: 'd', address: 'dan@example.com', text: 't', expiresAt: EXPIRES },
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
    await sendgrid.send([{ deliveryId: 'a', address: 'ann@example.com', text: 't', expiresAt: EXPIRES }]);
    const out = await sendgrid.send([{ deliveryId: 'b', address: 'bob@example.com', text: 't', expiresAt: EXPIRES }]);
    expect(out).toEqual([expect.objectContaining({ outcome: 'transient', reason: 'sendgrid 429 too many requests', retryAfterMs: expect.any(Number) })]);
    const ms = (out[0] as { retryAfterMs: number }).retryAfterMs;
    expect(ms).toBeGreaterThanOrEqual(1000);
    expect(ms).toBeLessThanOrEqual(3000);
  });

  it('rejects with transient outcomes on 5xx, outage and a hung request', async () => {
    const inst = sandbox.instance('sendgrid');
    const msgs = [{ deliveryId: 'a', address: 'ann@example.com', text: 't', expiresAt: EXPIRES }, { deliveryId: 'b', address: 'bob@example.com', text: 't', expiresAt: EXPIRES }];
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

  it('reports a wrong API key as rejected credentials (sendgrid 401)', async () => {
    const wrong = new SendgridProvider({ apiKey: 'SG.wrong', from: 'notify@example.com', baseUrl: sandbox.endpoints.sendgrid!.url, ca: sandbox.ca });
    try {
      const err = await wrong.send([{ deliveryId: 'a', address: 'ann@example.com', text: 't', expiresAt: EXPIRES }]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderUnavailableError);
      expect((err as ProviderUnavailableError).outcomes).toEqual([{ deliveryId: 'a', outcome: 'transient', reason: 'sendgrid 401', credentialsRejected: true }]);
    } finally {
      await wrong.close();
    }
  });

  it('sends the receipt token as custom_args.r on each personalization, and the reply-to', async () => {
    const request = vi.spyOn(Client.prototype, 'request');
    const replying = new SendgridProvider({
      apiKey: sandbox.credentials.sendgridApiKey,
      from: 'notify@example.com',
      replyTo: 'support@example.com',
      baseUrl: sandbox.endpoints.sendgrid!.url,
      ca: sandbox.ca,
    });
    try {
      const out = await replying.send([
        { deliveryId: 'r1', address: 'ann@example.com', text: 't', expiresAt: EXPIRES, receipt: encodeReceipt(ref('r1')) },
        { deliveryId: 'r2', address: 'bob@example.com', text: 't', expiresAt: EXPIRES },
      ]);
      expect(out.every((o) => o.outcome === 'accepted')).toBe(true);
      const inst = sandbox.instance('sendgrid');
      expect(inst.accepted({ deliveryId: 'r1' })[0]!.customArgs).toEqual({ deliveryId: 'r1', r: encodeReceipt(ref('r1')) });
      expect(inst.accepted({ deliveryId: 'r2' })[0]!.customArgs).toEqual({ deliveryId: 'r2' });
      // The sandbox does not record reply_to: the request the SDK made shows it.
      const body = (request.mock.calls.at(-1)![0] as { body: { reply_to?: unknown } }).body;
      expect(JSON.parse(JSON.stringify(body.reply_to))).toEqual({ email: 'support@example.com' });
    } finally {
      request.mockRestore();
      await replying.close();
    }
  });

  it('gets signed events back that verify and read as receipts (delivered, bounce)', async () => {
    const received: { body: string; signature: string; timestamp: string }[] = [];
    const hooks = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          body: Buffer.concat(chunks).toString('utf8'),
          signature: String(req.headers['x-twilio-email-event-webhook-signature'] ?? ''),
          timestamp: String(req.headers['x-twilio-email-event-webhook-timestamp'] ?? ''),
        });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => hooks.listen(0, '127.0.0.1', resolve));
    try {
      const inst = sandbox.instance('sendgrid');
      inst.setEventWebhook(sandbox.credentials.sendgridApiKey, `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/receipts/sendgrid`);
      inst.addReceiptFailures(['gone@example.com'], 'bounce');
      await sendgrid.send([
        { deliveryId: 'e1', address: 'ann@example.com', text: 't', expiresAt: EXPIRES, receipt: encodeReceipt(ref('e1')) },
        { deliveryId: 'e2', address: 'gone@example.com', text: 't', expiresAt: EXPIRES, receipt: encodeReceipt(ref('e2')) },
      ]);
      const publicKey = inst.eventWebhookPublicKey!;
      const receipts = async () => {
        const until = Date.now() + 5000;
        for (;;) {
          const all = received.filter((r) => verifySendgridEvents(publicKey, r.body, r.signature, r.timestamp)).flatMap((r) => sendgridReceipts(JSON.parse(r.body)));
          if (all.length >= 2 || Date.now() > until) return all;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      };
      const got = await receipts();
      expect(got).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ ref: ref('e1'), status: 'delivered', providerStatus: 'delivered' }),
          expect.objectContaining({ ref: ref('e2'), status: 'bounced', providerStatus: 'bounce' }),
        ]),
      );
      expect(received.length).toBeGreaterThan(0);
      const first = received[0]!;
      expect(verifySendgridEvents(publicKey, first.body.replace('e1', 'e9'), first.signature, first.timestamp)).toBe(false);
    } finally {
      hooks.closeAllConnections();
      await new Promise((resolve) => hooks.close(resolve));
    }
  });
});
