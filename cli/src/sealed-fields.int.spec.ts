import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { isSealed, PersonalDataCipher } from '#platform/crypto/personal-data';
import { systemClock } from '#platform/clock';
import { randomIds } from '#platform/ids';
import { createCommands } from '#command/application';
import { replayAudit, SECRET } from '#query/audit/replay';

/** The table of sealed fields (schema/src/sealed.ts) must cover everything the use cases seal. */
describe('sealed fields: the replay opens every one the use cases write', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('leaves no sealed value unopened, and shows secrets as [secret]', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sealed-fields-'));
    const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    closers.push(() => eventStore.close(), () => vault.close());
    const cipher = new PersonalDataCipher(vault, randomBytes(32));
    const commands = createCommands({ eventStore, cipher, clock: systemClock, ids: randomIds, eraser: { shred: async () => [] }, webhookUrls: { allowHttpLocalhost: true } });
    const actor = { keyId: 'k', requestId: 'r' };
    const consent = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };
    await commands.users.register(actor, 'acme', { userId: 'u1', name: 'Ada', consent, devices: [{ kind: 'EMAIL', address: 'ada@example.com' }] });
    await commands.users.update(actor, 'acme', { userId: 'u1', name: 'Ada L.' });
    const added = await commands.users.addDevice(actor, 'acme', 'u1', { kind: 'SMS', address: '+821012345678' });
    await commands.users.changeDevice(actor, 'acme', 'u1', added.deviceId, { kind: 'SMS', address: '+821087654321' });
    await commands.webhooks.register(actor, 'acme', { url: 'https://hooks.example.com/x', events: ['notification.completed'] });

    const strings: string[] = [];
    const walk = (v: unknown): void => {
      if (typeof v === 'string') strings.push(v);
      else if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') Object.values(v).forEach(walk);
    };
    const types: string[] = [];
    for await (const r of replayAudit(eventStore, cipher, { tenantId: 'acme' })) {
      types.push(r.type);
      walk(r.data);
    }
    expect(types).toEqual(['UserRegistered', 'UserRenamed', 'DeviceAdded', 'DeviceChanged', 'WebhookEndpointRegistered']);
    expect(strings.filter((x) => isSealed(x))).toEqual([]);
    expect(strings).toEqual(expect.arrayContaining(['Ada', 'Ada L.', 'ada@example.com', '+821087654321', SECRET]));
  });
});
