import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { openSqliteLeaseStore } from '#platform/lease/sqlite';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { manualClock } from '#platform/clock';
import { randomIds } from '#platform/ids';
import { createCommands } from '#command/application';
import { Shredder } from './shredder';
import { ExpiryService } from './service';

const T = new Date('2026-11-24T10:00:00.000Z');
const logger = pino({ level: 'silent' });

/** Two "instances" share the files, each with its own connections, as two processes would. */
const setup = async (users: number) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'expiry-'));
  const clock = manualClock(T);
  const master = randomBytes(32);
  const instance = (id: string) => {
    const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const readStore = openSqliteReadStore({ path: path.join(dir, 'read.db') });
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    const leases = openSqliteLeaseStore({ path: path.join(dir, 'read.db') });
    const cipher = new PersonalDataCipher(vault, master);
    const shredder = new Shredder({ eventStore, vault, cipher, clock });
    const service = new ExpiryService({ eventStore, readStore, leases, shredder, clock, logger, instanceId: id, leaseTtlMs: 300 });
    const commands = createCommands({ eventStore, cipher, clock, ids: randomIds, eraser: shredder });
    return { eventStore, readStore, vault, leases, cipher, shredder, service, commands, close: async () => {
      await service.stop();
      await Promise.all([eventStore.close(), readStore.close(), vault.close(), leases.close()]);
    } };
  };
  const a = instance('a');
  for (let i = 0; i < users; i++) {
    await a.commands.users.register({ keyId: 'k', requestId: 'r' }, 't', {
      userId: `u${i}`, name: `User ${i}`, consent: { start: T, end: new Date(T.getTime() + 60_000 + (i % 5)) }, devices: [{ kind: 'sms', address: `+8210${10_000_000 + i}` }],
    });
  }
  return { dir, clock, instance, a };
};

const countByUser = async (store: ReturnType<typeof openSqliteEventStore>, type: string) => {
  const counts = new Map<string, number>();
  for (const e of await store.readAll({ after: 0, maxCount: 1_000_000, types: [type] })) {
    const u = (e.data as { userId: string }).userId;
    counts.set(u, (counts.get(u) ?? 0) + 1);
  }
  return counts;
};

describe('expiry on several instances', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  it('expires every user exactly once with two instances running, one leading', async () => {
    const { clock, instance, a } = await setup(300);
    const b = instance('b');
    closers.push(a.close, b.close);
    await Promise.all([a.service.start(), b.service.start()]);
    expect([a.service.isLeader, b.service.isLeader].filter(Boolean)).toHaveLength(1);
    clock.advance(120_000);
    await Promise.all([a.service.runDue(), b.service.runDue()]);
    const expired = await countByUser(a.eventStore, 'ConsentExpired');
    const shredded = await countByUser(a.eventStore, 'UserDataShredded');
    expect(expired.size).toBe(300);
    expect([...expired.values()].every((n) => n === 1)).toBe(true);
    expect(shredded.size).toBe(300);
    expect([...shredded.values()].every((n) => n === 1)).toBe(true);
    expect(await a.vault.get('t:u0')).toBeNull();
  });

  it('shreds every user exactly once even when two shredders race on the same users', async () => {
    const { clock, instance, a } = await setup(200);
    const b = instance('b');
    closers.push(a.close, b.close);
    clock.advance(120_000);
    const users = Array.from({ length: 200 }, (_, i) => ({ tenantId: 't', userId: `u${i}` }));
    const [ra, rb] = await Promise.all([
      a.shredder.shred(users, 'expire', { actor: 'system', requestId: 'a' }),
      b.shredder.shred([...users].reverse(), 'expire', { actor: 'system', requestId: 'b' }),
    ]);
    expect(ra.length + rb.length).toBeGreaterThanOrEqual(200);
    const expired = await countByUser(a.eventStore, 'ConsentExpired');
    const shredded = await countByUser(a.eventStore, 'UserDataShredded');
    expect([...expired.values()]).toEqual(Array(200).fill(1));
    expect([...shredded.values()]).toEqual(Array(200).fill(1));
  });

  it('hands the work over when the leader stops', async () => {
    const { clock, instance, a } = await setup(20);
    const b = instance('b');
    closers.push(b.close);
    await a.service.start();
    await b.service.start();
    expect(a.service.isLeader).toBe(true);
    expect(b.service.isLeader).toBe(false);
    await a.close();
    await new Promise((r) => setTimeout(r, 400));
    expect(b.service.isLeader).toBe(true);
    clock.advance(120_000);
    await b.service.runDue();
    expect((await countByUser(b.eventStore, 'UserDataShredded')).size).toBe(20);
  });

  it('takes over from a holder that died without letting go, once its lease lapses', async () => {
    const { instance, a } = await setup(1);
    closers.push(a.close);
    expect(await a.leases.acquire('consent-expiry', 'dead-process', 300)).toBe(true);
    const b = instance('b');
    closers.push(b.close);
    await b.service.start();
    expect(b.service.isLeader).toBe(false);
    await new Promise((r) => setTimeout(r, 500));
    expect(b.service.isLeader).toBe(true);
  });
});
