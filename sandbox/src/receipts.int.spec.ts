import { EventWebhook } from '@sendgrid/eventwebhook';
import twilio from 'twilio';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sendgridMail, twilioClient, until, webhookReceiver, type Hit } from './clients.test-support';
import { startSandbox, type Sandbox } from './index';
import { twilioSignature } from './receipts';

type Receiver = Awaited<ReturnType<typeof webhookReceiver>>;

const form = (hit: Hit) => Object.fromEntries(new URLSearchParams(hit.body));

describe('provider sandbox: delivery receipts', () => {
  let sandbox: Sandbox;
  let receiver: Receiver;

  const control = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${sandbox.control}${path}`, {
      method,
      ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };

  beforeAll(async () => {
    sandbox = await startSandbox({ instances: [{ name: 'twilio', kind: 'twilio' }, { name: 'sendgrid', kind: 'sendgrid' }] });
  });
  afterAll(async () => {
    await sandbox.close();
  });
  beforeEach(async () => {
    sandbox.reset();
    receiver = await webhookReceiver();
  });
  afterEach(async () => {
    await receiver.close();
  });

  describe('Twilio status callbacks', () => {
    const sms = (to: string, statusCallback: string) => ({ to, from: '+15005550006', body: 'hi', statusCallback });

    it('posts sent then delivered to the exact StatusCallback URL, signed as Twilio signs, after the receipt delay', async () => {
      const { accountSid, authToken } = sandbox.credentials.twilio;
      await control('PUT', '/twilio', { receiptDelayMs: 150 });
      const url = `${receiver.base}/hooks/twilio?deliveryId=n1:u1:d1&r=abc`;
      const sentAt = Date.now();
      const m = await twilioClient(sandbox, 'twilio', { accountSid, authToken }).messages.create(sms('+4915112345678', url));
      const hits = await receiver.waitFor(2);
      expect(hits[0]!.at - sentAt).toBeGreaterThanOrEqual(140);
      expect(hits[1]!.at - hits[0]!.at).toBeGreaterThanOrEqual(140);
      expect(hits.map((h) => h.url)).toEqual(['/hooks/twilio?deliveryId=n1:u1:d1&r=abc', '/hooks/twilio?deliveryId=n1:u1:d1&r=abc']);
      expect(hits[0]!.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
      expect(hits.map(form)).toEqual([
        { MessageSid: m.sid, SmsSid: m.sid, AccountSid: accountSid, From: '+15005550006', To: '+4915112345678', ApiVersion: '2010-04-01', MessageStatus: 'sent', SmsStatus: 'sent' },
        expect.objectContaining({ MessageSid: m.sid, MessageStatus: 'delivered', SmsStatus: 'delivered' }),
      ]);
      for (const hit of hits) {
        const signature = hit.headers['x-twilio-signature'] as string;
        expect(twilio.validateRequest(authToken, signature, url, form(hit))).toBe(true);
        expect(twilio.validateRequest(authToken, signature, url, { ...form(hit), MessageStatus: 'failed' })).toBe(false);
        expect(twilio.validateRequest('another-token', signature, url, form(hit))).toBe(false);
      }
      // The receiver has the post before the sandbox has its answer.
      await until(() => sandbox.instance('twilio').stats().receiptsSent === 2);
      expect(sandbox.instance('twilio').stats()).toMatchObject({ receiptsSent: 2, receiptsFailed: 0 });
    });

    it('reports undelivered (30005) and failed (30008, never sent) for the listed addresses', async () => {
      const { accountSid, authToken } = sandbox.credentials.twilio;
      await control('PUT', '/twilio', { receiptDelayMs: 5, receiptFailures: { '+4915100000001': 'undelivered', '+4915100000002': 'failed' } });
      const client = twilioClient(sandbox, 'twilio', { accountSid, authToken });
      await client.messages.create(sms('+4915100000001', `${receiver.base}/u`));
      await receiver.waitFor(2);
      await client.messages.create(sms('+4915100000002', `${receiver.base}/f`));
      await receiver.waitFor(3);
      await new Promise((r) => setTimeout(r, 50));
      expect(receiver.hits.map((h) => [h.url, form(h).MessageStatus, form(h).ErrorCode])).toEqual([
        ['/u', 'sent', undefined],
        ['/u', 'undelivered', '30005'],
        ['/f', 'failed', '30008'],
      ]);
      for (const h of receiver.hits) {
        expect(twilio.validateRequest(authToken, h.headers['x-twilio-signature'] as string, `${receiver.base}${h.url}`, form(h))).toBe(true);
      }
    });

    it("signs with the account's auth token when an API key sent the message", async () => {
      const tw = sandbox.instance('twilio');
      const accountSid = 'AC' + '7'.repeat(32);
      tw.registerCredential({ accountSid, authToken: 'account-token' });
      tw.registerCredential({ accountSid, apiKeySid: 'SK' + '7'.repeat(32), apiKeySecret: 'k' });
      tw.setFaults({ receiptDelayMs: 5 });
      const url = `${receiver.base}/k`;
      await twilioClient(sandbox, 'twilio', { accountSid, apiKeySid: 'SK' + '7'.repeat(32), apiKeySecret: 'k' }).messages.create(sms('+4915112345678', url));
      const [hit] = await receiver.waitFor(1);
      expect(form(hit!).AccountSid).toBe(accountSid);
      expect(twilio.validateRequest('account-token', hit!.headers['x-twilio-signature'] as string, url, form(hit!))).toBe(true);
    });

    it('retries a failing callback with backoff, then counts it failed; the sandbox itself is not called back', async () => {
      const { accountSid, authToken } = sandbox.credentials.twilio;
      await receiver.close();
      let calls = 0;
      receiver = await webhookReceiver(() => (++calls <= 2 ? 500 : 200));
      sandbox.instance('twilio').setFaults({ receiptDelayMs: 10 });
      const client = twilioClient(sandbox, 'twilio', { accountSid, authToken });
      await client.messages.create(sms('+4915112345678', `${receiver.base}/flaky`));
      await receiver.waitFor(2);
      await until(() => sandbox.instance('twilio').stats().receiptsSent === 2);
      expect(calls).toBe(4); // sent: 500, 500, 200; delivered: 200
      expect(sandbox.instance('twilio').stats()).toMatchObject({ receiptsSent: 2, receiptsFailed: 0 });

      // Nothing listens there: connection refused, four tries per status.
      const closed = await webhookReceiver();
      await closed.close();
      await client.messages.create(sms('+4915112345678', `${closed.base}/gone`));
      await client.messages.create(sms('+4915112345678', `${sandbox.endpoints.twilio!.url}/status-callback?deliveryId=x`));
      await until(() => sandbox.instance('twilio').stats().receiptsFailed >= 2);
      // Long enough for the sandbox's own URL to have failed too, had it been called.
      await new Promise((r) => setTimeout(r, 400));
      expect(sandbox.instance('twilio').stats()).toMatchObject({ receiptsSent: 2, receiptsFailed: 2 });
      expect(sandbox.instance('twilio').accepted({ deliveryId: 'x' })).toHaveLength(1);
    });

    it('drops pending callbacks on reset, before the first and while one is in flight', async () => {
      const { accountSid, authToken } = sandbox.credentials.twilio;
      const client = twilioClient(sandbox, 'twilio', { accountSid, authToken });
      sandbox.instance('twilio').setFaults({ receiptDelayMs: 100 });
      await client.messages.create(sms('+4915112345678', `${receiver.base}/late`));
      sandbox.reset();
      await new Promise((r) => setTimeout(r, 300));
      expect(receiver.hits).toEqual([]);

      await receiver.close();
      let arrived = 0;
      receiver = await webhookReceiver(async () => {
        arrived++;
        await new Promise((r) => setTimeout(r, 100));
        return 200;
      });
      sandbox.instance('twilio').setFaults({ receiptDelayMs: 10 });
      await client.messages.create(sms('+4915112345678', `${receiver.base}/in-flight`));
      await until(() => arrived === 1);
      sandbox.reset(); // while `sent` awaits its answer: `delivered` must not follow
      await new Promise((r) => setTimeout(r, 400));
      expect(arrived).toBe(1);
      expect(sandbox.instance('twilio').stats()).toMatchObject({ receiptsSent: 0, receiptsFailed: 0 });
    });

    it('computes the signature as twilio.validateRequest expects', () => {
      const params = { To: '+1', Body: 'a b&c', From: '+2' };
      const url = 'https://example.com/cb?x=1';
      expect(twilio.validateRequest('tok', twilioSignature('tok', url, params), url, params)).toBe(true);
      expect(twilio.validateRequest('tok', twilioSignature('tok', url, { ...params, Body: 'a b' }), url, params)).toBe(false);
    });
  });

  describe('SendGrid signed event webhook', () => {
    const ew = new EventWebhook();
    const verify = (publicKey: string, hit: Hit, body = hit.body) =>
      ew.verifySignature(
        ew.convertPublicKeyToECDSA(publicKey),
        body,
        hit.headers['x-twilio-email-event-webhook-signature'] as string,
        hit.headers['x-twilio-email-event-webhook-timestamp'] as string,
      );
    const events = () => receiver.hits.flatMap((h) => JSON.parse(h.body) as Record<string, unknown>[]);
    const waitForEvents = async (n: number) => {
      await until(() => events().length >= n);
      return events();
    };

    it('exposes its verification key as SendGrid does, in the description and the control API', async () => {
      const key = sandbox.credentials.sendgridWebhookPublicKey!;
      expect(Buffer.from(key, 'base64').length).toBe(91); // DER SubjectPublicKeyInfo of a P-256 key
      expect((await control('GET', '/sendgrid/event-webhook')).json).toEqual({ publicKey: key, webhooks: [] });
      expect((await control('GET', '/twilio/event-webhook')).status).toBe(404);
    });

    it('posts processed and delivered, batched, signed, with custom_args flattened, to the webhook of the sending key only', async () => {
      const sg = sandbox.instance('sendgrid');
      const publicKey = sandbox.credentials.sendgridWebhookPublicKey!;
      const tenantKey = 'SG.tenant-h.secret';
      const tenantId = sg.registerCredential({ apiKey: tenantKey });
      const put = await control('PUT', '/sendgrid/event-webhook', { apiKey: tenantKey, url: `${receiver.base}/sg` });
      expect(put.json.webhooks).toEqual([{ credential: tenantId, url: `${receiver.base}/sg` }]);
      sg.setFaults({ receiptDelayMs: 20 });

      const [res] = await sendgridMail(sandbox, 'sendgrid', tenantKey).send({
        from: 'n@h.example',
        subject: 's',
        text: 't',
        customArgs: { tenant: 'h' },
        personalizations: [
          { to: [{ email: 'a@example.com' }], customArgs: { deliveryId: 'n1:a' } },
          { to: [{ email: 'b@example.com' }], customArgs: { deliveryId: 'n1:b' } },
        ],
      });
      // The platform key has no webhook: nothing for its messages.
      await sendgridMail(sandbox, 'sendgrid', sandbox.credentials.sendgridApiKey).send({ from: 'n@x.example', to: 'c@example.com', subject: 's', text: 't' });
      const all = await waitForEvents(4);
      await new Promise((r) => setTimeout(r, 100));
      expect(events()).toHaveLength(4);
      expect(receiver.hits.length).toBeLessThanOrEqual(2); // both recipients' events of one step share a POST
      const messageId = res.headers['x-message-id'] as string;
      expect(all).toEqual([
        { email: 'a@example.com', event: 'processed', timestamp: expect.any(Number), sg_event_id: expect.any(String), sg_message_id: `${messageId}.0`, 'smtp-id': expect.any(String), tenant: 'h', deliveryId: 'n1:a' },
        expect.objectContaining({ email: 'b@example.com', event: 'processed', sg_message_id: `${messageId}.1`, deliveryId: 'n1:b', tenant: 'h' }),
        expect.objectContaining({ email: 'a@example.com', event: 'delivered', deliveryId: 'n1:a' }),
        expect.objectContaining({ email: 'b@example.com', event: 'delivered', deliveryId: 'n1:b' }),
      ]);
      expect(new Set(all.map((e) => e.sg_event_id)).size).toBe(4);
      for (const hit of receiver.hits) {
        expect(hit.url).toBe('/sg');
        expect(verify(publicKey, hit)).toBe(true);
        expect(verify(publicKey, hit, hit.body.replace('delivered', 'bounce').replace('processed', 'dropped'))).toBe(false);
      }
      await until(() => sg.stats().receiptsSent === 4);
      expect(sg.stats()).toMatchObject({ receiptsSent: 4, receiptsFailed: 0 });
    });

    it('reports bounce, dropped and deferred for the listed addresses', async () => {
      const key = sandbox.credentials.sendgridApiKey;
      sandbox.instance('sendgrid').setEventWebhook(key, `${receiver.base}/sg`);
      await control('PUT', '/sendgrid', { receiptDelayMs: 5, receiptFailures: { 'x@example.com': 'bounce', 'y@example.com': 'dropped', 'z@example.com': 'deferred' } });
      await sendgridMail(sandbox, 'sendgrid', key).send({
        from: 'n@x.example',
        subject: 's',
        text: 't',
        personalizations: ['x', 'y', 'z', 'w'].map((n) => ({ to: [{ email: `${n}@example.com` }] })),
      });
      const final = (await waitForEvents(8)).filter((e) => e.event !== 'processed');
      expect(Object.fromEntries(final.map((e) => [e.email, e.event]))).toEqual({
        'x@example.com': 'bounce',
        'y@example.com': 'dropped',
        'z@example.com': 'deferred',
        'w@example.com': 'delivered',
      });
      expect(final.find((e) => e.event === 'bounce')).toMatchObject({ type: 'bounce', status: '5.1.1' });
    });

    it('refuses receipt outcomes the vendor does not have, and webhook settings on other kinds', async () => {
      expect((await control('PUT', '/sendgrid', { receiptFailures: { 'a@b.c': 'undelivered' } })).status).toBe(400);
      expect((await control('PUT', '/twilio', { receiptFailures: { '+1': 'bounce' } })).status).toBe(400);
      expect((await control('PUT', '/sendgrid/event-webhook', { apiKey: 'k', url: 'ftp://x' })).status).toBe(400);
      expect(() => sandbox.instance('twilio').setEventWebhook('k', 'http://x')).toThrow(TypeError);
      expect(sandbox.instance('sendgrid').receiptFailures()).toEqual({});
    });
  });
});
