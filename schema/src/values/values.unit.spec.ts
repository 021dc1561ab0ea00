import { describe, expect, it } from 'vitest';
import { DomainError } from '../errors';
import {
  parseConsentPeriod,
  parseDeliveryDeadlineMinutes,
  parseDeliveryHistoryDays,
  parseDeviceAddress,
  parseDeviceKind,
  parseEmail,
  parseEntityId,
  parseIdempotencyKey,
  parseNotificationText,
  parsePhoneE164,
  parseScopes,
  parseTenantId,
  parseUserIds,
  parseUserName,
} from './index';

const rejects = (fn: () => unknown, message: RegExp, field?: string) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DomainError);
    expect((e as DomainError).code).toBe('BAD_USER_INPUT');
    expect((e as DomainError).message).toMatch(message);
    if (field) expect((e as DomainError).field).toBe(field);
    return;
  }
  expect.fail(`accepted input that should be rejected (${message})`);
};

describe('notification text', () => {
  it('counts UTF-8 bytes: 500 Korean characters pass, 501 fail', () => {
    expect(parseNotificationText('text', '가'.repeat(500))).toHaveLength(500);
    rejects(() => parseNotificationText('text', '가'.repeat(501)), /^text: 1503 bytes in UTF-8, the limit is 1500 bytes$/, 'text');
  });
  it('1500 ASCII bytes pass, 1501 fail', () => {
    expect(parseNotificationText('text', 'a'.repeat(1500))).toHaveLength(1500);
    rejects(() => parseNotificationText('text', 'a'.repeat(1501)), /1501 bytes/);
  });
  it('counts an emoji as 4 bytes', () => {
    expect(parseNotificationText('text', '😀'.repeat(375))).toBeTruthy();
    rejects(() => parseNotificationText('text', '😀'.repeat(375) + 'a'), /1501 bytes/);
  });
  it('rejects empty text and non-strings', () => {
    rejects(() => parseNotificationText('text', '   '), /must not be empty/);
    rejects(() => parseNotificationText('text', 42), /expected a string/);
  });
});

describe('devices', () => {
  it('normalizes kinds and lists the allowed ones for a bad one', () => {
    expect(parseDeviceKind('kind', 'IOS')).toBe('ios');
    rejects(() => parseDeviceKind('devices[0].kind', 'fax'), /unknown device kind "fax"; use one of ios, android, email, sms/, 'devices[0].kind');
  });
  it('emails: lower-cases the domain, rejects malformed ones', () => {
    expect(parseEmail('email', ' Kim@Example.COM ')).toBe('Kim@example.com');
    for (const bad of ['no-at', 'a@b', 'a@@b.com', 'a b@c.com', '@c.com', 'a@-c.com', `${'x'.repeat(65)}@c.com`, 'a@c..com']) {
      rejects(() => parseEmail('email', bad), /not a valid email address/);
    }
  });
  it('phones: E.164 only', () => {
    expect(parsePhoneE164('phone', '+821012345678')).toBe('+821012345678');
    for (const bad of ['01012345678', '+0123456789', '+82 10 1234 5678', '+1234', '+1234567890123456']) {
      rejects(() => parsePhoneE164('phone', bad), /E\.164.*\+821012345678/);
    }
  });
  it('push tokens: hex for APNs (lower-cased), FCM alphabet for Android', () => {
    expect(parseDeviceAddress('a', 'ios', 'AB'.repeat(32))).toBe('ab'.repeat(32));
    rejects(() => parseDeviceAddress('a', 'ios', 'xyz'), /APNs device token/);
    rejects(() => parseDeviceAddress('a', 'ios', 'g'.repeat(64)), /APNs/);
    expect(parseDeviceAddress('a', 'android', 'cAbC:APA91b' + 'x'.repeat(30))).toMatch(/^cAbC/);
    rejects(() => parseDeviceAddress('a', 'android', 'short'), /FCM registration token/);
    rejects(() => parseDeviceAddress('a', 'android', 'x'.repeat(40) + ' y'), /FCM/);
  });
  it('dispatches by kind', () => {
    rejects(() => parseDeviceAddress('devices[1].address', 'email', '+821012345678'), /email/, 'devices[1].address');
    rejects(() => parseDeviceAddress('devices[1].address', 'sms', 'kim@example.com'), /E\.164/);
  });
});

describe('tenancy values', () => {
  it('delivery deadline: 10 to 30 whole minutes', () => {
    expect(parseDeliveryDeadlineMinutes('d', 10)).toBe(10);
    expect(parseDeliveryDeadlineMinutes('d', 30)).toBe(30);
    rejects(() => parseDeliveryDeadlineMinutes('deliveryDeadlineMinutes', 9), /9 is out of range; a delivery deadline must be between 10 and 30 minutes/);
    rejects(() => parseDeliveryDeadlineMinutes('d', 31), /31 is out of range/);
    rejects(() => parseDeliveryDeadlineMinutes('d', 12.5), /whole number/);
  });
  it('delivery history: 1 to 3650 whole days', () => {
    expect(parseDeliveryHistoryDays('d', 1)).toBe(1);
    expect(parseDeliveryHistoryDays('d', 3650)).toBe(3650);
    rejects(() => parseDeliveryHistoryDays('deliveryHistoryDays', 0), /deliveryHistoryDays: 0 is out of range; delivery history is kept between 1 and 3650 days/, 'deliveryHistoryDays');
    rejects(() => parseDeliveryHistoryDays('d', 3651), /3651 is out of range/);
    rejects(() => parseDeliveryHistoryDays('d', -5), /-5 is out of range/);
    rejects(() => parseDeliveryHistoryDays('d', 1.5), /whole number of days/);
    rejects(() => parseDeliveryHistoryDays('d', '30'), /whole number of days/);
  });
  it('consent period: end strictly after start, returned as ISO strings', () => {
    expect(parseConsentPeriod('consent', '2026-01-01T00:00:00+09:00', new Date('2027-01-01T00:00:00Z'))).toEqual({ start: '2025-12-31T15:00:00.000Z', end: '2027-01-01T00:00:00.000Z' });
    rejects(() => parseConsentPeriod('consent', '2027-01-01T00:00:00Z', '2026-01-01T00:00:00Z'), /consent\.end: .* must end after it starts/, 'consent.end');
    rejects(() => parseConsentPeriod('consent', '2027-01-01T00:00:00Z', '2027-01-01T00:00:00Z'), /must end after it starts/);
    rejects(() => parseConsentPeriod('consent', 'yesterday', '2027-01-01T00:00:00Z'), /consent\.start: "yesterday" is not a valid date-time/, 'consent.start');
  });
  it('scopes: known, de-duplicated, at least one', () => {
    expect(parseScopes('scopes', ['read', 'read', 'admin'])).toEqual(['read', 'admin']);
    rejects(() => parseScopes('scopes', []), /at least one scope/);
    rejects(() => parseScopes('scopes', ['read', 'root']), /scopes\[1\]: unknown scope "root"; use users:write/);
  });
});

describe('ids and names', () => {
  it('entity ids: opaque, no emails', () => {
    expect(parseEntityId('userId', 'user_42:a.b-c')).toBe('user_42:a.b-c');
    rejects(() => parseEntityId('userId', 'kim@example.com'), /looks like an email; ids are stored in clear/);
    rejects(() => parseEntityId('userId', ''), /not a valid id/);
    rejects(() => parseEntityId('userId', 'x'.repeat(65)), /not a valid id/);
    rejects(() => parseEntityId('userId', '-leading'), /not a valid id/);
  });
  it('tenant ids: lower case, and "operator" is reserved', () => {
    expect(parseTenantId('tenantId', 'acme-1')).toBe('acme-1');
    rejects(() => parseTenantId('tenantId', 'Acme'), /not a valid tenant id/);
    rejects(() => parseTenantId('tenantId', 'a.b'), /not a valid tenant id/);
    rejects(() => parseTenantId('tenantId', 'operator'), /reserved/);
  });
  it('user id lists: 1 to 1000, de-duplicated, each checked', () => {
    expect(parseUserIds('userIds', ['a', 'b', 'a'])).toEqual(['a', 'b']);
    rejects(() => parseUserIds('userIds', []), /at least one/);
    rejects(() => parseUserIds('userIds', Array.from({ length: 1001 }, (_, i) => `u${i}`)), /1001 user ids, the limit is 1000/);
    rejects(() => parseUserIds('userIds', ['ok', 'bad id']), /userIds\[1\]/, 'userIds[1]');
  });
  it('names: trimmed, bounded, no control characters', () => {
    expect(parseUserName('name', '  김민준 ')).toBe('김민준');
    rejects(() => parseUserName('name', ''), /must not be empty/);
    rejects(() => parseUserName('name', 'x'.repeat(201)), /201 characters, the limit is 200/);
    rejects(() => parseUserName('name', 'a\u0007b'), /control characters/);
  });
  it('idempotency keys: printable ASCII, 1 to 200', () => {
    expect(parseIdempotencyKey('k', 'release-42')).toBe('release-42');
    rejects(() => parseIdempotencyKey('k', 'has space'), /printable ASCII/);
    rejects(() => parseIdempotencyKey('k', 'x'.repeat(201)), /1 to 200/);
  });
});
