import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { PersonalDataCipher, SHREDDED } from '#platform/crypto/personal-data';
import type { EventStore } from '#platform/event-store/port';
import { streams, userKeyId } from '#schema/streams';
import type { EventMetadata } from '#schema/events';
import { replayAudit, verifyTenantChain, type AuditRecord } from './replay';

const meta = (tenantId: string, at: string): EventMetadata => ({ tenantId, actor: 'k1', requestId: 'r1', at });

describe('audit replay over the SQLite log', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
  });

  const setup = async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-'));
    const eventStore = openSqliteEventStore({ path: path.join(dir, 'events.db') });
    const vault = openSqliteKeyVault({ path: path.join(dir, 'keys.db') });
    closers.push(() => eventStore.close(), () => vault.close());
    const cipher = new PersonalDataCipher(vault, randomBytes(32));
    const register = async (es: EventStore, tenantId: string, userId: string, name: string, at: string) => {
      const key = (await cipher.keyFor(userKeyId(tenantId, userId), { create: true }))!;
      await es.appendToStream(streams.user(tenantId, userId), [{
        type: 'UserRegistered',
        data: { userId, name: cipher.seal(key, name), devices: [{ deviceId: 'd1', kind: 'email', address: cipher.seal(key, `${userId}@example.com`) }], consent: { start: '2026-01-01T00:00:00.000Z', end: '2030-01-01T00:00:00.000Z' }, optIn: true, groupIds: [] },
        metadata: meta(tenantId, at),
      }]);
    };
    return { eventStore, vault, cipher, register };
  };

  const all = async (it: AsyncIterable<AuditRecord>) => {
    const out: AuditRecord[] = [];
    for await (const r of it) out.push(r);
    return out;
  };

  it("opens sealed values, keeps to one tenant and one user, and reads a destroyed key's values as shredded", async () => {
    const { eventStore, vault, cipher, register } = await setup();
    await register(eventStore, 'acme', 'u1', '김민준', '2026-11-01T00:00:00.000Z');
    await register(eventStore, 'acme', 'u2', 'Ada Lovelace', '2026-11-02T00:00:00.000Z');
    await register(eventStore, 'other', 'u1', 'Someone Else', '2026-11-02T00:00:00.000Z');

    const acme = await all(replayAudit(eventStore, cipher, { tenantId: 'acme' }));
    expect(acme.map((r) => (r.data as { name: string }).name)).toEqual(['김민준', 'Ada Lovelace']);
    expect((acme[0]!.data as { devices: { address: string }[] }).devices[0]!.address).toBe('u1@example.com');

    const one = await all(replayAudit(eventStore, cipher, { tenantId: 'acme', userId: 'u2' }));
    expect(one.map((r) => r.streamName)).toEqual([streams.user('acme', 'u2')]);
    const since = await all(replayAudit(eventStore, cipher, { tenantId: 'acme', from: '2026-11-02T00:00:00.000Z' }));
    expect(since).toHaveLength(1);

    await vault.destroy(userKeyId('acme', 'u1'));
    cipher.forget(userKeyId('acme', 'u1'));
    const after = await all(replayAudit(eventStore, cipher, { tenantId: 'acme' }));
    expect((after[0]!.data as { name: string }).name).toBe(SHREDDED);
    expect((after[0]!.data as { devices: { address: string }[] }).devices[0]!.address).toBe(SHREDDED);
    expect((after[1]!.data as { name: string }).name).toBe('Ada Lovelace');
    expect(JSON.stringify(after)).not.toContain('김민준');
  });

  it("verifies a tenant's hash chain", async () => {
    const { eventStore, register } = await setup();
    await register(eventStore, 'acme', 'u1', 'A', '2026-11-01T00:00:00.000Z');
    await register(eventStore, 'acme', 'u2', 'B', '2026-11-01T00:00:01.000Z');
    const report = await verifyTenantChain(eventStore, 'acme');
    expect(report).toMatchObject({ ok: true });
  });

  it('opens only the fields that hold sealed values: an id a user chose that begins with pd1. replays as itself', async () => {
    const { eventStore, cipher } = await setup();
    const userId = 'pd1.x';
    const key = (await cipher.keyFor(userKeyId('acme', userId), { create: true }))!;
    const lookalike = `pd1.${Buffer.alloc(40, 7).toString('base64url')}`;
    await eventStore.appendToStreams([{
      streamName: streams.user('acme', userId),
      expectedRevision: 'any',
      events: [
        { type: 'UserRegistered', data: { userId, name: cipher.seal(key, 'Ada', 'name'), devices: [{ deviceId: 'd1', kind: 'sms', address: cipher.seal(key, '+821012345678', 'device:d1:sms') }], consent: { start: '2026-01-01T00:00:00.000Z', end: '2030-01-01T00:00:00.000Z' }, optIn: true, groupIds: ['pd1.group'] }, metadata: meta('acme', '2026-11-01T00:00:00.000Z') },
        { type: 'UserJoinedGroup', data: { userId, groupId: lookalike }, metadata: meta('acme', '2026-11-01T00:00:01.000Z') },
      ],
    }]);
    const records = await all(replayAudit(eventStore, cipher, { tenantId: 'acme' }));
    expect(records[0]!.data).toMatchObject({ userId: 'pd1.x', name: 'Ada', groupIds: ['pd1.group'], devices: [{ deviceId: 'd1', address: '+821012345678' }] });
    expect(records[1]!.data).toEqual({ userId: 'pd1.x', groupId: lookalike });
    // Filtering by that user finds it too.
    expect(await all(replayAudit(eventStore, cipher, { tenantId: 'acme', userId: 'pd1.x' }))).toHaveLength(2);
  });

  it('a sealed value moved to another field or device reads as shredded, not as the value', async () => {
    const { eventStore, cipher } = await setup();
    const key = (await cipher.keyFor(userKeyId('acme', 'u1'), { create: true }))!;
    const phone = cipher.seal(key, '+821012345678', 'device:d1:sms');
    await eventStore.appendToStream(streams.user('acme', 'u1'), [
      // The phone's ciphertext copied into the name, and onto another device.
      { type: 'UserRegistered', data: { userId: 'u1', name: phone, devices: [{ deviceId: 'd1', kind: 'sms', address: phone }, { deviceId: 'd2', kind: 'sms', address: phone }], consent: { start: '2026-01-01T00:00:00.000Z', end: '2030-01-01T00:00:00.000Z' }, optIn: true, groupIds: [] }, metadata: meta('acme', '2026-11-01T00:00:00.000Z') },
    ]);
    const [record] = await all(replayAudit(eventStore, cipher, { tenantId: 'acme' }));
    expect(record!.data).toMatchObject({ name: SHREDDED, devices: [{ deviceId: 'd1', address: '+821012345678' }, { deviceId: 'd2', address: SHREDDED }] });
  });
});
