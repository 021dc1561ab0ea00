import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  decodeReceipt,
  encodeReceipt,
  sendgridReceipts,
  twilioReceipt,
  verifySendgridEvents,
  verifyTwilioCallback,
  type ReceiptRef,
} from './receipts';

const REF: ReceiptRef = {
  tenantId: 'acme',
  notificationId: 'n-01HZX',
  partition: 7,
  requestedPosition: 123_456,
  requestedAt: '2026-11-30T12:00:00.000Z',
  deliveryId: 'n-01HZX:u-42:d-1',
  userId: 'u-42',
  deviceId: 'd-1',
  channel: 'sms',
};
const token = encodeReceipt(REF);
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('receipt tokens', () => {
  it('round-trip, compact and URL-safe', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token.length).toBeLessThan(200);
    expect(decodeReceipt(token)).toEqual(REF);
  });

  it('refuse anything that is not a token we made', () => {
    const row = JSON.parse(Buffer.from(token, 'base64url').toString());
    const variant = (i: number, v: unknown) => b64url(row.map((x: unknown, j: number) => (j === i ? v : x)));
    for (const bad of [
      '',
      'not base64!',
      b64url({ ...REF }),
      b64url(row.slice(0, 9)),
      variant(0, 2), // another version
      variant(1, ''), // empty tenant
      variant(3, -1), // negative partition
      variant(4, 1.5), // fractional position
      variant(5, 'yesterday'),
      variant(9, 'fax'),
      variant(7, 'x'.repeat(300)),
      'A'.repeat(3000),
      null,
      42,
    ]) {
      expect(decodeReceipt(bad)).toBeNull();
    }
  });
});

/** Twilio's algorithm: HMAC-SHA1 of the URL followed by each POST parameter, sorted by name, as name + value. */
const twilioSign = (authToken: string, url: string, params: Record<string, string>) =>
  crypto
    .createHmac('sha1', authToken)
    .update(url + Object.keys(params).sort().map((k) => k + params[k]).join(''))
    .digest('base64');

describe('Twilio status callbacks', () => {
  const authToken = 'f0'.repeat(16);
  const url = `https://hooks.example.com/receipts/twilio/acme/twilio?deliveryId=${encodeURIComponent(REF.deliveryId)}&r=${token}`;
  const params = { MessageSid: 'SM' + '1'.repeat(32), MessageStatus: 'delivered', AccountSid: 'AC' + 'a'.repeat(32), To: '+4915112345678' };

  it('accepts Twilio’s signature and refuses a tampered URL, parameter, token or signature', () => {
    const signature = twilioSign(authToken, url, params);
    expect(verifyTwilioCallback(authToken, signature, url, params)).toBe(true);
    expect(verifyTwilioCallback(authToken, signature, url.replace('acme', 'evil'), params)).toBe(false);
    expect(verifyTwilioCallback(authToken, signature, url, { ...params, MessageStatus: 'failed' })).toBe(false);
    expect(verifyTwilioCallback('0f'.repeat(16), signature, url, params)).toBe(false);
    expect(verifyTwilioCallback(authToken, signature.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')), url, params)).toBe(false);
    expect(verifyTwilioCallback(authToken, '', url, params)).toBe(false);
  });

  it.each([
    ['delivered', 'delivered'],
    ['undelivered', 'bounced'],
    ['failed', 'bounced'],
  ] as const)('%s → %s', (providerStatus, status) => {
    const receipt = twilioReceipt({ ...params, MessageStatus: providerStatus, ...(status === 'bounced' ? { ErrorCode: '30005' } : {}) }, token);
    expect(receipt).toEqual({ ref: REF, status, providerStatus, ...(status === 'bounced' ? { errorCode: '30005' } : {}) });
  });

  it('queued, sending and sent are not receipts; nor is a callback without a valid token', () => {
    for (const s of ['queued', 'sending', 'sent', 'accepted', 'unknown-status']) expect(twilioReceipt({ ...params, MessageStatus: s }, token)).toBeNull();
    expect(twilioReceipt(params, undefined)).toBeNull();
    expect(twilioReceipt(params, 'garbage')).toBeNull();
    expect(twilioReceipt({ MessageSid: 'SMx' }, token)).toBeNull();
  });

  it('keeps only a numeric ErrorCode', () => {
    expect(twilioReceipt({ ...params, MessageStatus: 'failed', ErrorCode: 'see +4915112345678' }, token)).not.toHaveProperty('errorCode');
  });
});

describe('SendGrid event webhook', () => {
  const keys = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKey = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const events = [
    { email: 'ann@example.com', event: 'processed', timestamp: 1764504000, r: token },
    { email: 'ann@example.com', event: 'delivered', timestamp: 1764504001, r: token, sg_message_id: 'abc.0' },
    { email: 'bob@example.com', event: 'bounce', timestamp: 1764504002, r: token, status: '5.1.1', reason: '550 5.1.1 <bob@example.com>: unknown' },
    { email: 'cat@example.com', event: 'dropped', timestamp: 1764504003, r: token, status: 'Bounced Address' },
    { email: 'dan@example.com', event: 'deferred', timestamp: 1764504004, r: token, response: '451 4.3.0 try later' },
    { email: 'eve@example.com', event: 'open', timestamp: 1764504005, r: token },
    { email: 'fay@example.com', event: 'delivered', timestamp: 1764504006 },
    { email: 'gus@example.com', event: 'delivered', timestamp: 1764504007, r: 'tampered' },
  ];
  const body = JSON.stringify(events);
  const timestamp = '1764504010';
  const sign = (ts: string, payload: string) => crypto.sign('sha256', Buffer.from(ts + payload), keys.privateKey).toString('base64');

  it('accepts SendGrid’s ECDSA signature over timestamp + raw body, and refuses tampering', () => {
    const signature = sign(timestamp, body);
    expect(verifySendgridEvents(publicKey, body, signature, timestamp)).toBe(true);
    expect(verifySendgridEvents(publicKey, Buffer.from(body), signature, timestamp)).toBe(true);
    expect(verifySendgridEvents(publicKey, body.replace('delivered', 'bounce'), signature, timestamp)).toBe(false);
    expect(verifySendgridEvents(publicKey, body, signature, '1764504011')).toBe(false);
    const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(verifySendgridEvents(other, body, signature, timestamp)).toBe(false);
    expect(verifySendgridEvents(publicKey, body, 'bm90IGEgc2lnbmF0dXJl', timestamp)).toBe(false);
    expect(verifySendgridEvents(publicKey, body, '', timestamp)).toBe(false);
    expect(verifySendgridEvents('not a key', body, signature, timestamp)).toBe(false);
  });

  it('maps delivered, bounce, dropped and deferred events carrying r; ignores the rest', () => {
    expect(sendgridReceipts(JSON.parse(body))).toEqual([
      { ref: REF, status: 'delivered', providerStatus: 'delivered', at: '2025-11-30T12:00:01.000Z' },
      { ref: REF, status: 'bounced', providerStatus: 'bounce', errorCode: '5.1.1', at: '2025-11-30T12:00:02.000Z' },
      { ref: REF, status: 'bounced', providerStatus: 'dropped', at: '2025-11-30T12:00:03.000Z' },
      { ref: REF, status: 'deferred', providerStatus: 'deferred', at: '2025-11-30T12:00:04.000Z' },
    ]);
    // Nothing of the events' free text (addresses, SMTP responses) comes through.
    expect(JSON.stringify(sendgridReceipts(JSON.parse(body)))).not.toMatch(/example\.com|550|451/);
    expect(sendgridReceipts({ not: 'an array' })).toEqual([]);
    expect(sendgridReceipts([null, 1, 'x', { event: 42 }])).toEqual([]);
  });
});
