import { describe, expect, it } from 'vitest';
import type { SealedDevice } from '#schema/events';
import { recipientDevices } from './eligibility';

describe('eligibility at fan-out: one device per address', () => {
  it('the fan-out plans one device per fingerprint and kind, even when the log holds duplicates', () => {
    const d = (deviceId: string, kind: SealedDevice['kind'], fingerprint?: string): SealedDevice =>
      ({ deviceId, kind, address: `pd2.${deviceId}` as SealedDevice['address'], ...(fingerprint ? { fingerprint } : {}) });
    const user = {
      id: 'acme:u', tenantId: 'acme', userId: 'u', name: 'pd2.n' as SealedDevice['address'],
      devices: [d('a', 'sms', 'F1'), d('b', 'sms', 'F1'), d('c', 'email', 'F1'), d('e', 'sms', 'F2'), d('f', 'sms'), d('g', 'sms')],
      consent: { start: '2026-01-01T00:00:00.000Z', end: '2099-01-01T00:00:00.000Z' }, optIn: true, groupIds: [],
      registeredAt: '', updatedAt: '', revision: 0, shard: 0,
    };
    const verdict = recipientDevices(user, '2027-01-01T00:00:00.000Z');
    expect(verdict.ok && verdict.value.map((x) => x.deviceId)).toEqual(['a', 'c', 'e', 'f', 'g']);
  });
});
