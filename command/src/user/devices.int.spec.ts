import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { systemClock } from '#platform/clock';
import { randomIds } from '#platform/ids';
import { streams, userKeyId } from '#schema/streams';
import { createCommands } from '../application';
import { load } from '../handler';
import { userDecider } from './decider';

const consent = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };
const actor = { keyId: 'k1', requestId: 'r1' };

describe('one device per address and kind', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  const setup = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'devices-'));
    const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    closers.push(() => eventStore.close(), () => vault.close());
    const cipher = new PersonalDataCipher(vault, randomBytes(32));
    const commands = createCommands({ eventStore, cipher, clock: systemClock, ids: randomIds, eraser: { shred: async () => [] } });
    const devicesOf = async (userId: string) => {
      const { state } = await load(eventStore, streams.user('acme', userId), userDecider);
      if (state.status !== 'Registered') throw new Error('not registered');
      return state.devices;
    };
    return { eventStore, cipher, commands, devicesOf };
  };

  it('registers one device for an address given twice (case aside for email), and keeps a keyed fingerprint', async () => {
    const { commands, devicesOf } = setup();
    await commands.users.register(actor, 'acme', {
      userId: 'u1', name: 'Ada', consent,
      devices: [
        { kind: 'SMS', address: '+821012345678' },
        { kind: 'SMS', address: '+821012345678' },
        { kind: 'EMAIL', address: 'Ada@Example.com' },
        { kind: 'EMAIL', address: 'ada@example.com' },
        { kind: 'SMS', address: '+821099999999' },
      ],
    });
    const devices = await devicesOf('u1');
    expect(devices.map((d) => d.kind)).toEqual(['sms', 'email', 'sms']);
    expect(devices.every((d) => typeof d.fingerprint === 'string' && d.fingerprint.length > 10)).toBe(true);
    expect(devices[0]!.fingerprint).not.toBe(devices[2]!.fingerprint);
  });

  it('adding an address the user has already adds nothing and names the device that has it; changing to it is a conflict', async () => {
    const { commands, devicesOf } = setup();
    await commands.users.register(actor, 'acme', { userId: 'u1', name: 'Ada', consent, devices: [{ kind: 'SMS', address: '+821012345678' }, { kind: 'EMAIL', address: 'ada@example.com' }] });
    const [sms, email] = await devicesOf('u1');
    const again = await commands.users.addDevice(actor, 'acme', 'u1', { kind: 'SMS', address: '+821012345678' });
    expect(again.deviceId).toBe(sms!.deviceId);
    expect(again.appended).toEqual([]);
    expect(await devicesOf('u1')).toHaveLength(2);
    // The same address under another kind is another recipient.
    await expect(commands.users.changeDevice(actor, 'acme', 'u1', email!.deviceId, { kind: 'SMS', address: '+821012345678' })).rejects.toMatchObject({ code: 'CONFLICT' });
    const added = await commands.users.addDevice(actor, 'acme', 'u1', { kind: 'SMS', address: '+821000000001' });
    expect(added.deviceId).not.toBe(sms!.deviceId);
    expect(await devicesOf('u1')).toHaveLength(3);
  });

  it('compares with devices recorded before fingerprints by opening their addresses', async () => {
    const { eventStore, cipher, commands, devicesOf } = setup();
    const key = (await cipher.keyFor(userKeyId('acme', 'old'), { create: true }))!;
    // As an older version recorded it: no fingerprint, sealed without a context.
    await eventStore.appendToStream(streams.user('acme', 'old'), [{
      type: 'UserRegistered',
      data: { userId: 'old', name: cipher.seal(key, 'Old'), devices: [{ deviceId: 'd-old', kind: 'sms', address: cipher.seal(key, '+821055555555') }], consent: { start: '2026-01-01T00:00:00.000Z', end: '2099-01-01T00:00:00.000Z' }, optIn: true, groupIds: [] },
      metadata: { tenantId: 'acme', actor: 'k1', requestId: 'r0', at: new Date().toISOString() },
    }]);
    const again = await commands.users.addDevice(actor, 'acme', 'old', { kind: 'SMS', address: '+821055555555' });
    expect(again.deviceId).toBe('d-old');
    expect(await devicesOf('old')).toHaveLength(1);
  });
});
