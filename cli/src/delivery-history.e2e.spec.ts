import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { manualClock } from '#platform/clock';
import { registerTenant, startHarness, type Harness } from './testing/harness';

const T = new Date('2026-11-24T10:00:00.000Z');
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const NOTIFICATION = `notificationId status progress { total succeeded failed expired reachedUsers } completedAt`;
const TIMELINE = `nodes { type notificationId deviceId status }`;

describe('delivery history (injected clock)', () => {
  const clock = manualClock(T);
  let h: Harness;
  let admin: string;

  const register = (userId: string, devices: readonly { kind: string; address: string }[]) =>
    h.ok(admin, `mutation($in: RegisterUserInput!) { registerUser(input: $in) { userId } }`, {
      in: { userId, name: `Person ${userId}`, consent: { start: T.toISOString(), end: new Date(T.getTime() + 365 * DAY).toISOString() }, devices },
    });
  const send = async (text: string): Promise<string> => {
    const sent = await h.ok<any>(admin, `mutation($in: SendNotificationInput!) { sendNotification(input: $in) { notification { notificationId } } }`, { in: { userIds: ['u1', 'u2'], text } });
    const id: string = sent.sendNotification.notification.notificationId;
    for (let i = 0; i < 400; i++) {
      const n = await h.ok<any>(admin, `{ notification(notificationId: "${id}") { status } }`);
      if (n.notification.status === 'COMPLETED') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await h.app.settle();
    return id;
  };
  const notification = async (id: string) => (await h.ok<any>(admin, `{ notification(notificationId: "${id}") { ${NOTIFICATION} } }`)).notification;
  const timeline = async (userId: string): Promise<{ type: string; notificationId: string | null; deviceId: string | null; status: string | null }[]> =>
    (await h.ok<any>(admin, `{ timeline(userId: "${userId}", first: 100) { ${TIMELINE} } }`)).timeline.nodes;
  const deliveries = async (userId: string) => (await timeline(userId)).filter((e) => e.type === 'Delivery').map((e) => `${e.notificationId}/${e.deviceId}`).sort();

  beforeAll(async () => {
    h = await startHarness({ clock });
    admin = await registerTenant(h, 'acme');
    await register('u1', [{ kind: 'EMAIL', address: 'history.u1@example.com' }, { kind: 'SMS', address: '+821055501001' }]);
    await register('u2', [{ kind: 'SMS', address: '+821055501002' }]);
  });
  afterAll(() => h.stop());

  it('keeps 90 days by default and shows the setting on the tenant', async () => {
    expect((await h.ok<any>(admin, `{ tenant { deliveryHistoryDays } }`)).tenant.deliveryHistoryDays).toBe(90);
  });

  describe('refuses a history out of range or not a whole number of days: BAD_USER_INPUT, nothing appended', () => {
    const cases: [string, string, Record<string, unknown> | undefined, RegExp][] = [
      ['0 days', `mutation { changeDeliveryHistory(days: 0) { tenantId } }`, undefined, /deliveryHistoryDays: 0 is out of range; delivery history is kept between 1 and 3650 days/],
      ['3651 days', `mutation { changeDeliveryHistory(days: 3651) { tenantId } }`, undefined, /3651 is out of range/],
      ['-7 days', `mutation($d: Int!) { changeDeliveryHistory(days: $d) { tenantId } }`, { d: -7 }, /-7 is out of range/],
      ['1.5 days', `mutation { changeDeliveryHistory(days: 1.5) { tenantId } }`, undefined, /Int cannot represent non-integer value: 1.5/],
      ['"30" as a string', `mutation($d: Int!) { changeDeliveryHistory(days: $d) { tenantId } }`, { d: '30' }, /Int cannot represent non-integer value: "30"/],
    ];
    it.each(cases)('%s', async (_name, query, variables, message) => {
      const head = await h.app.eventStore.headPosition();
      const r = await h.gql(admin, query, variables);
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(message);
      expect(await h.app.eventStore.headPosition()).toBe(head);
    });
  });

  it('sets the history through GraphQL, recorded as an event and shown by the tenants read model', async () => {
    const changed = await h.ok<any>(admin, `mutation { changeDeliveryHistory(days: 2) { tenantId deliveryHistoryDays } }`);
    expect(changed.changeDeliveryHistory).toEqual({ tenantId: 'acme', deliveryHistoryDays: 2 });
    await h.app.settle();
    expect((await h.ok<any>(admin, `{ tenant { deliveryHistoryDays } }`)).tenant.deliveryHistoryDays).toBe(2);
    const operator = await h.ok<any>(h.operatorKey, `{ tenants(first: 10) { nodes { tenantId deliveryHistoryDays } } }`);
    expect(operator.tenants.nodes).toEqual([{ tenantId: 'acme', deliveryHistoryDays: 2 }]);
    const events = await h.app.eventStore.readStream('tenant-acme');
    expect(events.filter((e) => e.type === 'DeliveryHistoryChanged').map((e) => e.data)).toEqual([{ tenantId: 'acme', deliveryHistoryDays: 2 }]);
  });

  it('removes the steps of deliveries past the history, keeps recent ones, the counts, the other entries and the log', async () => {
    const old = await send('old news');
    const oldCounts = await notification(old);
    expect(oldCounts).toMatchObject({ status: 'COMPLETED', progress: { total: 3, succeeded: 3, reachedUsers: 2 } });
    const devices = { u1: (await timeline('u1')).filter((e) => e.type === 'Delivery').map((e) => e.deviceId!), u2: (await timeline('u2')).filter((e) => e.type === 'Delivery').map((e) => e.deviceId!) };
    expect([devices.u1.length, devices.u2.length]).toEqual([2, 1]);
    const of = (notificationId: string, userId: 'u1' | 'u2') => devices[userId].map((d) => `${notificationId}/${d}`);
    clock.set(new Date(T.getTime() + DAY));
    const recent = await send('recent news');
    const recentCounts = await notification(recent);
    expect(await deliveries('u1')).toEqual([...of(old, 'u1'), ...of(recent, 'u1')].sort());
    const others = { u1: (await timeline('u1')).filter((e) => e.type !== 'Delivery'), u2: (await timeline('u2')).filter((e) => e.type !== 'Delivery') };
    expect(others.u1.map((e) => e.type)).toEqual(['UserRegistered', 'NotificationRequested', 'NotificationRequested']);
    const head = await h.app.eventStore.headPosition();

    // Two days after the first send, less a millisecond: everything stays.
    clock.set(new Date(T.getTime() + 2 * DAY - 1));
    expect(await h.app.expiry!.sweepHistory()).toBe(0);
    expect(await deliveries('u1')).toHaveLength(4);

    clock.set(new Date(T.getTime() + 2 * DAY + 60_000));
    expect(await h.app.expiry!.sweepHistory()).toBe(3);
    expect(await deliveries('u1')).toEqual(of(recent, 'u1').sort());
    expect(await deliveries('u2')).toEqual(of(recent, 'u2'));
    expect((await timeline('u1')).filter((e) => e.type !== 'Delivery')).toEqual(others.u1);
    expect((await timeline('u2')).filter((e) => e.type !== 'Delivery')).toEqual(others.u2);
    expect(await notification(old)).toEqual(oldCounts);
    expect(await notification(recent)).toEqual(recentCounts);
    // The log keeps every step: the sweep appended nothing, and the old send's outcomes are still there.
    expect(await h.app.eventStore.headPosition()).toBe(head);
    const outcomes = await h.app.eventStore.readAll({ after: 0, maxCount: 10_000, types: ['DeliverySucceeded'] });
    const entries = outcomes.flatMap((e) => (e.type === 'DeliverySucceeded' && e.data.notificationId === old ? e.data.deliveries : []));
    expect(entries).toHaveLength(3);
  });
});
