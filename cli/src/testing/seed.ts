import type { EventStore, StreamAppend } from '#platform/event-store/port';
import type { PersonalDataCipher } from '#platform/crypto/personal-data';
import type { DeviceKind, SealedDevice } from '#schema/events';
import { streams, userKeyId } from '#schema/streams';
import { sealContexts } from '#schema/sealed';
import { normalizedAddress } from '#schema/values';

export type SeedDevice = Readonly<{ kind: DeviceKind; address: string }>;

/** Addresses that pass validation and are unique per user index. */
export const addressOf = (kind: DeviceKind, i: number): string => {
  switch (kind) {
    case 'ios':
      return i.toString(16).padStart(64, '0');
    case 'android':
      return `fcm-load-${i}-abcdefghijklmnopqrstuvwxyz012345`;
    case 'email':
      return `user${i}@load.example`;
    case 'sms':
      return `+8210${String(i).padStart(8, '0')}`;
  }
};

/** The fan-out benchmark's mix: 40% Android, 30% iOS, 20% email, 10% SMS, one device each. */
export const mixedDevice = (i: number): SeedDevice[] => {
  const r = i % 10;
  const kind: DeviceKind = r < 4 ? 'android' : r < 7 ? 'ios' : r < 9 ? 'email' : 'sms';
  return [{ kind, address: addressOf(kind, i) }];
};

/**
 * Registers many users the way the API would (a data key each, sealed name and addresses, one
 * UserRegistered event), in batches of 1,000 per append: for tests and benchmarks that need
 * tens of thousands of users without 10,000 HTTP round trips.
 */
export const seedUsers = async (
  deps: Readonly<{ eventStore: EventStore; cipher: PersonalDataCipher }>,
  options: Readonly<{ tenantId: string; count: number; groupIds?: readonly string[]; devices: (i: number) => readonly SeedDevice[]; prefix?: string; consentEnd?: string; from?: number }>,
): Promise<void> => {
  const from = options.from ?? 0;
  for (let start = from; start < from + options.count; start += 1000) {
    const appends: StreamAppend[] = [];
    for (let i = start; i < Math.min(from + options.count, start + 1000); i++) {
      const userId = `${options.prefix ?? 'u'}${i}`;
      const key = (await deps.cipher.keyFor(userKeyId(options.tenantId, userId), { create: true }))!;
      const devices: SealedDevice[] = options.devices(i).map((d, j) => ({
        deviceId: `d${j}`,
        kind: d.kind,
        address: deps.cipher.seal(key, d.address, sealContexts.deviceAddress({ deviceId: `d${j}`, kind: d.kind })),
        fingerprint: deps.cipher.fingerprint(key, normalizedAddress(d.kind, d.address)),
      }));
      appends.push({
        streamName: streams.user(options.tenantId, userId),
        expectedRevision: 'no_stream',
        events: [{
          type: 'UserRegistered',
          data: { userId, name: deps.cipher.seal(key, `Load User ${i}`, sealContexts.userName), devices, consent: { start: '2026-01-01T00:00:00.000Z', end: options.consentEnd ?? '2099-01-01T00:00:00.000Z' }, optIn: true, groupIds: options.groupIds ?? [] },
          metadata: { tenantId: options.tenantId, actor: 'seed', requestId: 'seed', at: new Date().toISOString() },
        }],
      });
    }
    await deps.eventStore.appendToStreams(appends);
  }
};
