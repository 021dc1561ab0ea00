import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import type { EventStore } from '#platform/event-store/port';
import type { KeyVault } from '#platform/key-vault/port';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { systemClock } from '#platform/clock';
import { randomIds, type IdGenerator } from '#platform/ids';
import { createCommands } from './application';

const consent = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };
const actor = { keyId: 'k1', requestId: 'r1' };

/** What a command asked of the stores: every stream read and append, every vault call, in order. */
type Calls = string[];

const counted = (eventStore: EventStore, vault: KeyVault, calls: Calls): { eventStore: EventStore; vault: KeyVault } => ({
  eventStore: {
    ...eventStore,
    readStream: (name, o) => {
      calls.push(`read ${name}`);
      return eventStore.readStream(name, o);
    },
    appendToStream: (name, events, o) => {
      calls.push(`append ${name}`);
      return eventStore.appendToStream(name, events, o);
    },
  },
  vault: {
    ...vault,
    get: (id) => {
      calls.push('vault get');
      return vault.get(id);
    },
    putIfAbsent: (id, wrapped) => {
      calls.push('vault put');
      return vault.putIfAbsent(id, wrapped);
    },
  },
});

/**
 * Each round trip to the stores is a wait where they are servers (the cluster's PostgreSQL): a
 * command reads only what it has not just read, and what it reads does not wait for each other.
 */
describe('what a command reads', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  const setup = async (ids: IdGenerator = randomIds) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'round-trips-'));
    const store = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const keys = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    closers.push(() => store.close(), () => keys.close());
    const calls: Calls = [];
    const { eventStore, vault } = counted(store, keys, calls);
    const commands = createCommands({ eventStore, cipher: new PersonalDataCipher(vault, randomBytes(32)), clock: systemClock, ids, eraser: { shred: async () => [] } });
    await commands.tenants.register(actor, { tenantId: 'acme', name: 'Acme', deliveryDeadlineMinutes: 15 });
    await commands.groups.create(actor, 'acme', { groupId: 'g', name: 'G' });
    await commands.users.register(actor, 'acme', { userId: 'u1', name: 'Ada', consent, devices: [{ kind: 'EMAIL', address: 'ada@example.com' }], groupIds: ['g'] });
    calls.length = 0;
    return { eventStore, commands, calls };
  };

  it("a send reads the tenant's settings its authentication just read, and never the stream of the notification it names", async () => {
    const { commands, calls } = await setup();
    // As the API's authentication does, then the send.
    await commands.tenants.state('acme');
    const sent = await commands.notifications.send(actor, 'acme', { groupId: 'g', text: 'hello' });
    const stream = `notification-acme.${sent.state.status === 'None' ? '' : sent.state.notificationId}`;
    expect(calls).toEqual(['read tenant-acme', 'read group-acme.g', `append ${stream}`]);
  });

  it('a send with an idempotency key reads its stream, and its retry appends nothing', async () => {
    const { commands, calls } = await setup();
    const first = await commands.notifications.send(actor, 'acme', { groupId: 'g', text: 'hello', idempotencyKey: 'k-1' });
    const retry = await commands.notifications.send(actor, 'acme', { groupId: 'g', text: 'hello', idempotencyKey: 'k-1' });
    expect([first.duplicate, retry.duplicate]).toEqual([false, true]);
    expect(calls.filter((c) => c.startsWith('append'))).toHaveLength(1);
    expect(calls.filter((c) => c.startsWith('read notification-'))).toHaveLength(2);
  });

  it('a send whose new id names a stream that exists is decided again on that stream, not appended blindly', async () => {
    const ids: IdGenerator = { ulid: () => 'n-same', shortId: randomIds.shortId };
    const { commands, eventStore } = await setup(ids);
    await commands.notifications.send(actor, 'acme', { groupId: 'g', text: 'first' });
    // The expected revision refused the append; the retry read the stream and found another request.
    await expect(commands.notifications.send(actor, 'acme', { groupId: 'g', text: 'second' })).rejects.toThrow(/already used for a different request/);
    expect((await eventStore.readStream('notification-acme.n-same')).map((e) => e.type)).toEqual(['NotificationRequested']);
  });

  it('a send to a group that does not exist appends nothing, whatever the estimate', async () => {
    const { commands, calls } = await setup();
    await expect(commands.notifications.send(actor, 'acme', { groupId: 'nope', text: 'hello' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(calls.filter((c) => c.startsWith('append'))).toEqual([]);
  });

  it('a registration reads the user stream once and stores the new key in one call', async () => {
    const { commands, calls } = await setup();
    await commands.users.register(actor, 'acme', { userId: 'u2', name: 'Bo', consent, devices: [{ kind: 'SMS', address: '+821012345678' }], groupIds: ['g'] });
    expect([...calls].sort()).toEqual(['append user-acme.u2', 'read group-acme.g', 'read user-acme.u2', 'vault put'].sort());
    // An existing user is a conflict before any key is made, even with a group that does not exist.
    calls.length = 0;
    await expect(commands.users.register(actor, 'acme', { userId: 'u2', name: 'Bo', consent, devices: [{ kind: 'SMS', address: '+821012345678' }], groupIds: ['nope'] }))
      .rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(commands.users.register(actor, 'acme', { userId: 'u3', name: 'Cy', consent, devices: [{ kind: 'SMS', address: '+821012345679' }], groupIds: ['nope'] }))
      .rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(calls.filter((c) => c.startsWith('append') || c.startsWith('vault'))).toEqual([]);
  });
});
