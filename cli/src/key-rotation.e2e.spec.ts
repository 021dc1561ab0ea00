import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { manualClock } from '#platform/clock';
import { PersonalDataCipher } from '#platform/crypto/personal-data';
import { streams, userKeyId } from '#schema/streams';
import { sealContexts } from '#schema/sealed';
import type { UserDocument } from '#projections/users/document';
import { registerTenant, startHarness, type Harness } from './testing/harness';
import { addressOf, mixedDevice, seedUsers } from './testing/seed';
import { runKeysRotate } from './keys';
import { parseAuditArgs, runAudit } from './audit';

const stderr = Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream;
const HOUR = 3_600_000;

describe('master key rotation without downtime', () => {
  const T = new Date();
  const clock = manualClock(T);
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  const harnesses: Harness[] = [];
  afterAll(async () => {
    for (const h of harnesses) await h.stop().catch(() => undefined);
  });

  it('rotates in the middle of a send and an expiry burst: the send completes, shredding destroys keys, no user is unreadable', async () => {
    // Users written under the old master key.
    const first = await startHarness({ clock, env: { MASTER_KEY: oldKey } });
    harnesses.push(first);
    const dataDir = first.dataDir;
    const admin = await registerTenant(first, 'acme');
    await first.ok(admin, `mutation { createGroup(input: { groupId: "send", name: "Send" }) { groupId } }`);
    await first.ok(admin, `mutation { createGroup(input: { groupId: "burst", name: "Burst" }) { groupId } }`);
    await seedUsers(first.app, { tenantId: 'acme', count: 200, groupIds: ['send'], devices: mixedDevice, prefix: 's' });
    await seedUsers(first.app, { tenantId: 'acme', count: 120, groupIds: ['burst'], prefix: 'b', consentEnd: new Date(T.getTime() + HOUR).toISOString(), devices: (i) => [{ kind: 'email', address: addressOf('email', 5000 + i) }] });
    await first.app.settle();
    await first.stop();
    harnesses.pop();

    // Every process restarts with the new key and the old one beside it.
    const h = await startHarness({ clock, dataDir, env: { MASTER_KEY: newKey, MASTER_KEY_PREVIOUS: oldKey, SANDBOX_LATENCY_MS: '150' } });
    harnesses.push(h);
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "send", text: "during the rotation" }) { notification { notificationId } } }`);
    const id = sent.sendNotification.notification.notificationId;

    // The rotation, slowed to span the send, with an expiry burst in the middle of it.
    let batches = 0;
    let burst: Promise<void> | null = null;
    const outcome = await runKeysRotate(h.app, { command: 'rotate', batchSize: 10, state: null }, stderr, {
      afterBatch: async () => {
        if (++batches === 8) {
          clock.set(new Date(T.getTime() + 2 * HOUR));
          burst = h.app.expiry!.runDue();
        }
        await new Promise((r) => setTimeout(r, 20));
      },
    });
    await burst;
    expect(batches).toBeGreaterThan(8);
    expect(outcome.rotation).toMatchObject({ complete: true, unreadable: [] });

    // The send completes: every delivery succeeded.
    const deadline = Date.now() + 60_000;
    let n: any;
    do {
      await new Promise((r) => setTimeout(r, 100));
      n = (await h.ok<any>(admin, `{ notification(notificationId: "${id}") { status progress { total succeeded failed expired } } }`)).notification;
    } while (n.status !== 'COMPLETED' && Date.now() < deadline);
    expect(n).toMatchObject({ status: 'COMPLETED', progress: { total: 200, succeeded: 200, failed: 0, expired: 0 } });

    // Shredding destroyed every burst user's key, and no rotation brought one back.
    for (let i = 0; i < 120; i++) {
      expect(await h.app.vault.get(userKeyId('acme', `b${i}`))).toBeNull();
      expect((await h.app.eventStore.readStream(streams.user('acme', `b${i}`))).at(-1)?.type).toBe('UserDataShredded');
    }
    // Every other key is wrapped by the new master key alone: a process without the old one reads every user.
    const newOnly = new PersonalDataCipher(h.app.vault, Buffer.from(newKey, 'base64'));
    // 200 users and the platform's own key (its sandbox integrations' credentials).
    expect(await h.app.vault.count()).toBe(201);
    expect((await h.app.vault.list(null, 1000)).every((k) => newOnly.isCurrent(k.wrapped))).toBe(true);
    for (let i = 0; i < 200; i++) {
      const key = await newOnly.keyFor(userKeyId('acme', `s${i}`), { create: false });
      const doc = (await h.app.readStore.get<UserDocument>('users', `acme:s${i}`))!;
      expect(newOnly.open(key!, doc.name, sealContexts.userName)).toBe(`Load User ${i}`);
    }
    await h.stop();
    harnesses.pop();

    // The old key can go: a restart with the new one only serves every user.
    const after = await startHarness({ clock, dataDir, env: { MASTER_KEY: newKey } });
    harnesses.push(after);
    const user = await after.ok<any>(admin, `{ user(userId: "s7") { name devices { address } } }`);
    expect(user.user).toMatchObject({ name: 'Load User 7' });
    expect(user.user.devices[0].address).not.toBe('[shredded]');
    // The audit chain's heads were authenticated again with the new key: the log verifies without the old one.
    expect(outcome.heads.invalid).toEqual([]);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    expect(await runAudit(after.app, parseAuditArgs(['verify']), out, stderr)).toBe(0);
    expect(text).toMatch(/ok {6}acme: \d+ events, chain intact/);
  }, 120_000);
});
