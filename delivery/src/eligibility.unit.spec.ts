import { describe, expect, it } from 'vitest';
import type { Sealed } from '#schema/events';
import type { UserDocument } from '#projections/users/document';
import { deliverableDevice, recipientDevices, withDataKey } from './eligibility';

const sealed = (s: string) => `pd1.${s}` as Sealed;
const user = (changes: Partial<UserDocument> = {}): UserDocument => ({
  id: 'acme:u1',
  tenantId: 'acme',
  userId: 'u1',
  name: sealed('name'),
  devices: [
    { deviceId: 'd1', kind: 'email', address: sealed('a') },
    { deviceId: 'd2', kind: 'sms', address: sealed('b'), invalid: true },
  ],
  consent: { start: '2026-01-01T00:00:00.000Z', end: '2027-01-01T00:00:00.000Z' },
  optIn: true,
  groupIds: [],
  registeredAt: '2026-01-01T00:00:00.000Z',
  updatedAt: '2026-01-01T00:00:00.000Z',
  revision: 0,
  shard: 7,
  ...changes,
});
const inside = '2026-06-01T00:00:00.000Z';

describe('eligibility at fan-out', () => {
  it('plans the valid devices of an opted-in user inside the consent period', () => {
    expect(recipientDevices(user(), inside)).toEqual({ ok: true, value: [user().devices[0]] });
  });

  it.each([
    ['unknown-user', undefined, inside],
    ['opted-out', user({ optIn: false }), inside],
    ['outside-consent', user(), '2025-12-31T23:59:59.999Z'],
    // The end is exclusive.
    ['outside-consent', user(), '2027-01-01T00:00:00.000Z'],
    ['no-valid-device', user({ devices: [{ deviceId: 'd2', kind: 'sms', address: sealed('b'), invalid: true }] }), inside],
    ['no-valid-device', user({ devices: [] }), inside],
  ] as const)('refuses with %s', (reason, doc, at) => {
    expect(recipientDevices(doc, at)).toEqual({ ok: false, reason });
  });

  it('says opted-out before outside-consent when both hold', () => {
    expect(recipientDevices(user({ optIn: false }), '2030-01-01T00:00:00.000Z')).toEqual({ ok: false, reason: 'opted-out' });
  });

  it('takes the consent start as inside', () => {
    expect(recipientDevices(user(), '2026-01-01T00:00:00.000Z').ok).toBe(true);
  });
});

describe('eligibility at send time', () => {
  it('gives the planned device back when it may still be sent to', () => {
    expect(deliverableDevice(user(), 'd1', inside)).toEqual({ ok: true, value: user().devices[0] });
  });

  it.each([
    ['erased', undefined, 'd1', inside],
    ['opted-out', user({ optIn: false }), 'd1', inside],
    ['outside-consent', user(), 'd1', '2027-06-01T00:00:00.000Z'],
    ['device-removed', user(), 'd9', inside],
    ['device-invalid', user(), 'd2', inside],
  ] as const)('refuses with %s', (reason, doc, deviceId, at) => {
    expect(deliverableDevice(doc, deviceId, at)).toEqual({ ok: false, reason });
  });

  it('checks the user before the device', () => {
    expect(deliverableDevice(user({ optIn: false }), 'd9', inside)).toEqual({ ok: false, reason: 'opted-out' });
  });

  it('counts a destroyed data key as erased', () => {
    expect(withDataKey(null)).toEqual({ ok: false, reason: 'erased' });
    expect(withDataKey(undefined)).toEqual({ ok: false, reason: 'erased' });
    const key = Buffer.alloc(32);
    expect(withDataKey(key)).toEqual({ ok: true, value: key });
  });
});
