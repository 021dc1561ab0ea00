import { describe, expect, it } from 'vitest';
import type { AnyEvent, RecordedEvent } from '#schema/events';
import { backoffMs } from './config';
import { failureCode, messagesOf } from './messages';
import { requestIdOf } from './sender';

const metadata = { tenantId: 'acme', actor: 'system', requestId: 'r', at: '2026-12-01T10:00:00.000Z' };
const recorded = (position: number, type: string, data: object): RecordedEvent<AnyEvent> =>
  ({ type, data, streamName: 's', revision: 0, position, metadata }) as unknown as RecordedEvent<AnyEvent>;
const batch = { notificationId: 'n1', requestedPosition: 3, requestedAt: '2026-12-01T09:59:00.000Z' };

describe('webhook messages', () => {
  it('numbers the messages of one event: msg_<position>_<n>', () => {
    const failed = recorded(42, 'DeliveryFailed', {
      ...batch,
      deliveries: [
        { deliveryId: 'd1', userId: 'u1', deviceId: 'dv1', channel: 'email', provider: 'smtp', reason: 'smtp rejected 550 5.1.1 <ada@example.com>: no such user' },
        { deliveryId: 'd2', userId: 'u2', deviceId: 'dv2', channel: 'sms', provider: null, reason: 'opted-out' },
      ],
    });
    expect(messagesOf(failed)).toEqual([
      { id: 'msg_42_0', type: 'delivery.failed', timestamp: metadata.at, data: { tenantId: 'acme', notificationId: 'n1', deliveryId: 'd1', userId: 'u1', deviceId: 'dv1', channel: 'email', provider: 'smtp', reason: 'provider-rejected' } },
      { id: 'msg_42_1', type: 'delivery.failed', timestamp: metadata.at, data: { tenantId: 'acme', notificationId: 'n1', deliveryId: 'd2', userId: 'u2', deviceId: 'dv2', channel: 'sms', provider: null, reason: 'opted-out' } },
    ]);
    expect(JSON.stringify(messagesOf(failed))).not.toMatch(/example\.com|550|no such user/);
  });

  it("keeps only our codes as a failure's reason", () => {
    expect(failureCode(null, 'outside-consent')).toBe('outside-consent');
    expect(failureCode(null, 'something else')).toBe('not-sent');
    expect(failureCode('apns', 'device-invalid')).toBe('provider-rejected');
    expect(failureCode(null, 'toString')).toBe('not-sent');
  });

  it('confirms deliveries from receipts that say delivered, at the time the provider reported', () => {
    const receipted = recorded(7, 'DeliveryReceipted', {
      ...batch,
      deliveries: [
        { deliveryId: 'd1', userId: 'u1', deviceId: 'dv1', channel: 'sms', provider: 'twilio', status: 'bounced', providerStatus: 'undelivered', errorCode: '30003', at: '2026-12-01T10:00:01.000Z' },
        { deliveryId: 'd2', userId: 'u2', deviceId: 'dv2', channel: 'sms', provider: 'twilio', status: 'delivered', providerStatus: 'delivered', at: '2026-12-01T10:00:02.000Z' },
      ],
    });
    expect(messagesOf(receipted)).toEqual([
      { id: 'msg_7_0', type: 'delivery.confirmed', timestamp: '2026-12-01T10:00:02.000Z', data: { tenantId: 'acme', notificationId: 'n1', deliveryId: 'd2', userId: 'u2', deviceId: 'dv2', channel: 'sms', provider: 'twilio' } },
    ]);
  });

  it('maps completions, invalidated devices and shredded users to ids, counts and codes', () => {
    expect(messagesOf(recorded(1, 'NotificationCompleted', { notificationId: 'n1', succeeded: 5, failed: 1, expired: 2, reachedUsers: 4 }))).toEqual([
      { id: 'msg_1_0', type: 'notification.completed', timestamp: metadata.at, data: { tenantId: 'acme', notificationId: 'n1', succeeded: 5, failed: 1, expired: 2, reachedUsers: 4 } },
    ]);
    expect(messagesOf(recorded(2, 'DeviceInvalidated', { userId: 'u1', deviceId: 'dv1', provider: 'apns', reason: 'apns 410 Unregistered' }))).toEqual([
      { id: 'msg_2_0', type: 'device.invalidated', timestamp: metadata.at, data: { tenantId: 'acme', userId: 'u1', deviceId: 'dv1', provider: 'apns' } },
    ]);
    expect(messagesOf(recorded(3, 'UserDataShredded', { userId: 'u1', reason: 'erasure-requested', groupIds: ['beta'] }))).toEqual([
      { id: 'msg_3_0', type: 'user.shredded', timestamp: metadata.at, data: { tenantId: 'acme', userId: 'u1', reason: 'erasure-requested' } },
    ]);
    expect(messagesOf(recorded(4, 'UserRegistered', { userId: 'u1', name: 'pd1.x', devices: [], consent: {}, optIn: true, groupIds: [] }))).toEqual([]);
  });

  it("names a request after its first and last messages, and backs off exponentially with jitter", () => {
    const m = (id: string) => ({ id, type: 'user.shredded' as const, timestamp: metadata.at, data: {} });
    expect(requestIdOf([m('msg_12_0'), m('msg_12_1'), m('msg_15_3')])).toBe('batch_12_0-15_3');
    expect(requestIdOf([m('msg_9_0')])).toBe('batch_9_0-9_0');
    const config = { retryBaseMs: 1000, retryMaxMs: 60_000 };
    expect([1, 2, 3].map((f) => backoffMs(config, f, () => 1))).toEqual([1000, 2000, 4000]);
    expect([1, 2, 3].map((f) => backoffMs(config, f, () => 0))).toEqual([500, 1000, 2000]);
    expect(backoffMs(config, 50, () => 1)).toBe(60_000);
  });
});
