import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '#platform/clock';
import { scanFiles } from '#platform/testing/scan';
import { streams, userKeyId } from '#schema/streams';
import { replayAudit } from '#query/audit/replay';
import { registerTenant, startHarness, type Harness } from './testing/harness';

const T = new Date('2026-11-24T10:00:00.000Z');
const at = (ms: number) => new Date(T.getTime() + ms).toISOString();
const HOUR = 3_600_000;

const person = (i: number) => ({
  name: `Expiring Person ${i} 김철수${i}`,
  email: `expiring.${i}@shred-probe.example`,
  phone: `+8210${String(70000000 + i)}`,
  ios: `${'ab'.repeat(32)}${String(1000 + i)}`,
  android: `shred-probe-fcm-${i}-abcdefghijklmnopqrstuvwxyz0123`,
});

describe('consent expiry and erasure (injected clock)', () => {
  const clock = manualClock(T);
  let h: Harness;
  let admin: string;
  const people = Array.from({ length: 6 }, (_, i) => person(i));
  const wrapped = new Map<string, Buffer>();

  const register = async (i: number, consentEnd: string) =>
    h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: {
        userId: `p-${i}`,
        name: people[i]!.name,
        groupIds: ['g'],
        consent: { start: at(-HOUR), end: consentEnd },
        devices: [
          { kind: 'EMAIL', address: people[i]!.email },
          { kind: 'SMS', address: people[i]!.phone },
          { kind: 'IOS', address: people[i]!.ios },
          { kind: 'ANDROID', address: people[i]!.android },
        ],
      },
    });
  const eventsOf = async (i: number) => (await h.app.eventStore.readStream(streams.user('acme', `p-${i}`))).map((e) => e.type);
  const gone = async (i: number) => {
    expect((await h.gql(admin, `{ user(userId: "p-${i}") { name } }`)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await h.gql(admin, `{ timeline(userId: "p-${i}") { nodes { type } } }`)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await h.app.readStore.find('timeline', { tenantId: 'acme', userId: `p-${i}` }, { limit: 10 })).items).toEqual([]);
    expect(await h.app.vault.get(userKeyId('acme', `p-${i}`))).toBeNull();
    const needles = [...Object.values(people[i]!), wrapped.get(`p-${i}`)!];
    const hits = await scanFiles(h.dataDir, needles);
    if (hits.length) console.log('HITS', JSON.stringify(hits));
    expect(hits).toEqual([]);
  };

  beforeAll(async () => {
    h = await startHarness({ clock });
    admin = await registerTenant(h, 'acme');
    await h.ok(admin, `mutation { createGroup(input: { groupId: "g", name: "G" }) { groupId } }`);
    for (const i of [0, 1, 2]) await register(i, at(HOUR));
    await register(3, at(3 * HOUR));
    await register(4, at(100 * HOUR));
    await register(5, at(100 * HOUR));
    const sent = await h.ok<any>(admin, `mutation { sendNotification(input: { groupId: "g", text: "before expiry" }) { notification { notificationId } } }`);
    // Delivered before any consent ends, so the erasures below find the delivery records in place.
    for (let i = 0; i < 200; i++) {
      const n = await h.ok<any>(admin, `{ notification(notificationId: "${sent.sendNotification.notification.notificationId}") { status } }`);
      if (n.notification.status === 'COMPLETED') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    for (let i = 0; i < people.length; i++) wrapped.set(`p-${i}`, (await h.app.vault.get(userKeyId('acme', `p-${i}`)))!);
    await h.app.settle();
  });
  afterAll(() => h.stop());

  it('the wrapped keys are in the vault files before (the scan can see them)', async () => {
    const hits = await scanFiles(h.dataDir, [...wrapped.values()]);
    expect(new Set(hits.map((x) => x.needle)).size).toBe(people.length);
  });

  it('expires nobody before their consent ends', async () => {
    clock.set(new Date(T.getTime() + HOUR - 1));
    await h.app.expiry!.runDue();
    await h.app.settle();
    expect((await h.ok<any>(admin, `{ user(userId: "p-0") { name } }`)).user.name).toBe(people[0]!.name);
    expect(await eventsOf(0)).toEqual(['UserRegistered']);
  });

  it('destroys the data of users whose consent ended, and nobody else\'s', async () => {
    clock.set(new Date(T.getTime() + HOUR));
    await h.app.expiry!.runDue();
    await h.app.settle();
    for (const i of [0, 1, 2]) {
      expect(await eventsOf(i)).toEqual(['UserRegistered', 'ConsentExpired', 'UserDataShredded']);
      await gone(i);
    }
    expect((await h.ok<any>(admin, `{ user(userId: "p-3") { name } }`)).user.name).toBe(people[3]!.name);
    expect((await h.ok<any>(admin, `{ group(groupId: "g") { memberCount } }`)).group.memberCount).toBe(3);
    const members = await h.ok<any>(admin, `{ users(groupId: "g") { nodes { userId } } }`);
    expect(members.users.nodes.map((n: any) => n.userId)).toEqual(['p-3', 'p-4', 'p-5']);
  });

  it('events carry no personal data and replay to "[shredded]" after the key is gone', async () => {
    const expired = (await h.app.eventStore.readStream(streams.user('acme', 'p-0'))).slice(1);
    expect(JSON.stringify(expired.map((e) => e.data))).not.toMatch(/pd1\./);
    const records = [];
    for await (const r of replayAudit(h.app.eventStore, h.app.cipher, { tenantId: 'acme', userId: 'p-0' })) records.push(r);
    expect(records.map((r) => r.type)).toEqual(['UserRegistered', 'ConsentExpired', 'UserDataShredded']);
    const data = records[0]!.data as any;
    expect(data.name).toBe('[shredded]');
    expect(data.devices.map((d: any) => d.address)).toEqual(['[shredded]', '[shredded]', '[shredded]', '[shredded]']);
  });

  it('reschedules when a consent period is extended, and expires at once when it is shortened into the past', async () => {
    await h.ok(admin, `mutation($in: UpdateUserInput!) { updateUser(input: $in) { userId } }`, { in: { userId: 'p-3', consent: { start: at(-HOUR), end: at(10 * HOUR) } } });
    await h.app.settle();
    clock.set(new Date(T.getTime() + 4 * HOUR));
    await h.app.expiry!.runDue();
    expect(await eventsOf(3)).toEqual(['UserRegistered', 'ConsentPeriodChanged']);
    await h.ok(admin, `mutation($in: UpdateUserInput!) { updateUser(input: $in) { userId } }`, { in: { userId: 'p-3', consent: { start: at(-HOUR), end: at(2 * HOUR) } } });
    await h.app.settle();
    await h.app.expiry!.runDue();
    await h.app.settle();
    expect(await eventsOf(3)).toEqual(['UserRegistered', 'ConsentPeriodChanged', 'ConsentPeriodChanged', 'ConsentExpired', 'UserDataShredded']);
    await gone(3);
  });

  it('forgets a user on request, by the same path, at once', async () => {
    const r = await h.ok<any>(admin, `mutation { forgetUser(userId: "p-4") { userId shreddedAt } }`);
    expect(r.forgetUser).toEqual({ userId: 'p-4', shreddedAt: clock.now().toISOString() });
    await h.app.settle();
    expect(await eventsOf(4)).toEqual(['UserRegistered', 'UserErasureRequested', 'UserDataShredded']);
    await gone(4);
    expect((await h.gql(admin, `mutation { forgetUser(userId: "p-4") { userId } }`)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const reader = await h.ok<any>(admin, `mutation { issueApiKey(input: { name: "r", scopes: [READ] }) { token } }`);
    expect((await h.gql(reader.issueApiKey.token, `mutation { forgetUser(userId: "p-5") { userId } }`)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('lets an erased id be registered again as a new person; the old data stays unreadable', async () => {
    await h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId: 'p-0', name: 'Someone New', consent: { start: at(0), end: at(1000 * HOUR) }, devices: [{ kind: 'SMS', address: '+821099998888' }] },
    });
    await h.app.settle();
    expect((await h.ok<any>(admin, `{ user(userId: "p-0") { name } }`)).user.name).toBe('Someone New');
    const records = [];
    for await (const r of replayAudit(h.app.eventStore, h.app.cipher, { tenantId: 'acme', userId: 'p-0' })) records.push(r);
    expect(records.map((r) => (r.data as any).name).filter(Boolean)).toEqual(['[shredded]', 'Someone New']);
  });

  it('no store file holds any of the erased values, even after a clean shutdown', async () => {
    const dataDir = h.dataDir;
    await h.stop();
    const needles = [0, 1, 2, 3, 4].flatMap((i) => [...Object.values(people[i]!), wrapped.get(`p-${i}`)!]);
    expect(await scanFiles(dataDir, needles)).toEqual([]);
    h = await startHarness({ clock, dataDir });
  });
});
