import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_ONLY, registerTenant, startHarness, USER_FIELDS, type Harness } from './testing/harness';

const CONSENT = { start: '2026-01-01T00:00:00Z', end: '2099-01-01T00:00:00Z' };
const IOS_TOKEN = 'a'.repeat(64);
const FCM_TOKEN = 'fcm-token-0123456789abcdefghijklmnopqrstuv';

const REGISTER = `mutation($in: RegisterUserInput!) { registerUser(input: $in) { ${USER_FIELDS} } }`;
const SEND = `mutation($in: SendNotificationInput!) {
  sendNotification(input: $in) { duplicate notification { notificationId status requestedAt deadline target { groupId userIds } progress { total completion } } }
}`;

describe('GraphQL API on the embedded default', () => {
  let h: Harness;
  let admin: string;
  let key: string;

  beforeAll(async () => {
    h = await startHarness({ env: API_ONLY });
    admin = await registerTenant(h, 'acme', 15);
    const issued = await h.ok<{ issueApiKey: { token: string; scopes: string[] } }>(
      admin,
      `mutation { issueApiKey(input: { name: "backend", scopes: [USERS_WRITE, NOTIFICATIONS_SEND, READ] }) { token scopes } }`,
    );
    expect(issued.issueApiKey.scopes).toEqual(['USERS_WRITE', 'NOTIFICATIONS_SEND', 'READ']);
    key = issued.issueApiKey.token;
    await h.ok(key, `mutation { createGroup(input: { groupId: "beta", name: "Beta testers" }) { groupId } }`);
  });
  afterAll(() => h.stop());

  it('registers a user with every device kind and reads it back decrypted', async () => {
    const registered = await h.ok<{ registerUser: any }>(key, REGISTER, {
      in: {
        userId: 'u-1',
        name: '김민준',
        groupIds: ['beta'],
        consent: CONSENT,
        devices: [
          { kind: 'IOS', address: IOS_TOKEN.toUpperCase() },
          { kind: 'ANDROID', address: FCM_TOKEN },
          { kind: 'EMAIL', address: 'Minjun@Example.COM' },
          { kind: 'SMS', address: '+821012345678' },
        ],
      },
    });
    const user = registered.registerUser;
    expect(user.name).toBe('김민준');
    expect(user.devices.map((d: any) => [d.kind, d.address])).toEqual([
      ['IOS', IOS_TOKEN],
      ['ANDROID', FCM_TOKEN],
      ['EMAIL', 'Minjun@example.com'],
      ['SMS', '+821012345678'],
    ]);
    expect(user.optIn).toBe(true);
    expect(user.groupIds).toEqual(['beta']);

    await h.app.settle();
    const read = await h.ok<{ user: any }>(key, `{ user(userId: "u-1") { ${USER_FIELDS} } }`);
    expect(read.user).toEqual(user);
    const members = await h.ok<{ users: any }>(key, `{ users(groupId: "beta") { nodes { userId } pageInfo { hasNextPage } } }`);
    expect(members.users.nodes).toEqual([{ userId: 'u-1' }]);
    const group = await h.ok<{ group: any }>(key, `{ group(groupId: "beta") { name memberCount } }`);
    expect(group.group).toEqual({ name: 'Beta testers', memberCount: 1 });
  });

  it('changes every field of a user, and the timeline records each step without personal data', async () => {
    await h.ok(key, REGISTER, { in: { userId: 'u-2', name: 'Ada', consent: CONSENT, devices: [{ kind: 'EMAIL', address: 'ada@example.com' }] } });
    const updated = await h.ok<{ updateUser: any }>(key, `mutation($in: UpdateUserInput!) { updateUser(input: $in) { ${USER_FIELDS} } }`, {
      in: { userId: 'u-2', name: 'Ada Lovelace', optIn: false, groupIds: ['beta'], consent: { start: '2026-02-01T00:00:00Z', end: '2098-01-01T00:00:00Z' } },
    });
    expect(updated.updateUser).toMatchObject({ name: 'Ada Lovelace', optIn: false, groupIds: ['beta'], consent: { start: '2026-02-01T00:00:00.000Z', end: '2098-01-01T00:00:00.000Z' } });

    const added = await h.ok<{ addDevice: any }>(key, `mutation { addDevice(userId: "u-2", device: { kind: SMS, address: "+15551234567" }) { devices { deviceId kind address } } }`);
    const sms = added.addDevice.devices.find((d: any) => d.kind === 'SMS');
    expect(sms.address).toBe('+15551234567');
    const changed = await h.ok<{ changeDevice: any }>(key, `mutation($d: ID!) { changeDevice(userId: "u-2", deviceId: $d, device: { kind: ANDROID, address: "${FCM_TOKEN}" }) { devices { deviceId kind address } } }`, { d: sms.deviceId });
    expect(changed.changeDevice.devices).toContainEqual({ deviceId: sms.deviceId, kind: 'ANDROID', address: FCM_TOKEN });
    const removed = await h.ok<{ removeDevice: any }>(key, `mutation($d: ID!) { removeDevice(userId: "u-2", deviceId: $d) { devices { kind } } }`, { d: sms.deviceId });
    expect(removed.removeDevice.devices).toEqual([{ kind: 'EMAIL' }]);

    const last = await h.gql(key, `mutation { removeDevice(userId: "u-2", deviceId: "${updated.updateUser.devices[0].deviceId}") { userId } }`);
    expect(last.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    await h.app.settle();
    const timeline = await h.ok<{ timeline: any }>(key, `{ timeline(userId: "u-2") { nodes { type actor summary } } }`);
    const types = timeline.timeline.nodes.map((n: any) => n.type);
    expect(types).toEqual(['UserRegistered', 'UserRenamed', 'ConsentPeriodChanged', 'OptInChanged', 'UserJoinedGroup', 'DeviceAdded', 'DeviceChanged', 'DeviceRemoved']);
    const text = JSON.stringify(timeline);
    for (const secret of ['Ada', 'ada@example.com', '+15551234567', FCM_TOKEN]) expect(text).not.toContain(secret);
  });

  it('adds and removes group members idempotently', async () => {
    await h.ok(key, `mutation { createGroup(input: { groupId: "vip", name: "VIP" }) { groupId } }`);
    const first = await h.ok<{ addGroupMembers: any }>(key, `mutation { addGroupMembers(groupId: "vip", userIds: ["u-1", "u-2"]) { changed unchanged } }`);
    expect(first.addGroupMembers).toEqual({ changed: 2, unchanged: 0 });
    const again = await h.ok<{ addGroupMembers: any }>(key, `mutation { addGroupMembers(groupId: "vip", userIds: ["u-1", "u-2"]) { changed unchanged } }`);
    expect(again.addGroupMembers).toEqual({ changed: 0, unchanged: 2 });
    const missing = await h.gql(key, `mutation { addGroupMembers(groupId: "vip", userIds: ["u-1", "nobody"]) { changed } }`);
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(missing.errors?.[0]?.message).toContain('nobody');
    await h.ok(key, `mutation { removeGroupMembers(groupId: "vip", userIds: ["u-2"]) { changed } }`);
    await h.ok(key, `mutation { renameGroup(groupId: "vip", name: "Very important") { name } }`);
    await h.app.settle();
    const group = await h.ok<{ group: any }>(key, `{ group(groupId: "vip") { name memberCount } }`);
    expect(group.group).toEqual({ name: 'Very important', memberCount: 1 });
    const page = await h.ok<{ users: any }>(key, `{ users(groupId: "vip") { nodes { userId } } }`);
    expect(page.users.nodes).toEqual([{ userId: 'u-1' }]);
  });

  it('sends a notification with a deadline from the tenant, idempotently', async () => {
    const before = Date.now();
    const sent = await h.ok<{ sendNotification: any }>(key, SEND, { in: { groupId: 'beta', text: '안녕하세요', idempotencyKey: 'release-1' } });
    const n = sent.sendNotification.notification;
    expect(sent.sendNotification.duplicate).toBe(false);
    expect(n.status).toBe('REQUESTED');
    expect(n.target).toEqual({ groupId: 'beta', userIds: null });
    expect(Date.parse(n.deadline) - Date.parse(n.requestedAt)).toBe(15 * 60_000);
    expect(Date.parse(n.requestedAt)).toBeGreaterThanOrEqual(before - 1000);

    const head = await h.app.eventStore.headPosition();
    const retry = await h.ok<{ sendNotification: any }>(key, SEND, { in: { groupId: 'beta', text: '안녕하세요', idempotencyKey: 'release-1' } });
    expect(retry.sendNotification.duplicate).toBe(true);
    expect(retry.sendNotification.notification).toEqual(n);
    expect(await h.app.eventStore.headPosition()).toBe(head);

    const conflict = await h.gql(key, SEND, { in: { groupId: 'beta', text: 'something else', idempotencyKey: 'release-1' } });
    expect(conflict.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(conflict.errors?.[0]?.message).toContain('release-1');
    expect(await h.app.eventStore.headPosition()).toBe(head);

    const toUsers = await h.ok<{ sendNotification: any }>(key, SEND, { in: { userIds: ['u-1', 'u-2'], text: 'direct' } });
    expect(toUsers.sendNotification.notification.target).toEqual({ groupId: null, userIds: ['u-1', 'u-2'] });

    await h.app.settle();
    const read = await h.ok<{ notification: any }>(key, `{ notification(notificationId: "${n.notificationId}") { notificationId text status deadline } }`);
    expect(read.notification).toEqual({ notificationId: n.notificationId, text: '안녕하세요', status: 'REQUESTED', deadline: n.deadline });
    const list = await h.ok<{ notifications: any }>(key, `{ notifications(first: 1) { nodes { text } pageInfo { hasNextPage endCursor } } }`);
    expect(list.notifications.nodes).toEqual([{ text: 'direct' }]);
    expect(list.notifications.pageInfo.hasNextPage).toBe(true);
    const next = await h.ok<{ notifications: any }>(key, `query($after: String) { notifications(first: 5, after: $after) { nodes { text } pageInfo { hasNextPage } } }`, { after: list.notifications.pageInfo.endCursor });
    expect(next.notifications).toEqual({ nodes: [{ text: '안녕하세요' }], pageInfo: { hasNextPage: false } });
  });

  it('uses the deadline in force when the notification is requested', async () => {
    await h.ok(admin, `mutation { changeDeliveryDeadline(minutes: 30) { deliveryDeadlineMinutes } }`);
    const sent = await h.ok<{ sendNotification: any }>(key, SEND, { in: { groupId: 'beta', text: 'later' } });
    const n = sent.sendNotification.notification;
    expect(Date.parse(n.deadline) - Date.parse(n.requestedAt)).toBe(30 * 60_000);
    await h.ok(admin, `mutation { changeDeliveryDeadline(minutes: 15) { deliveryDeadlineMinutes } }`);
  });

  describe('bad input: BAD_USER_INPUT naming the problem, and nothing appended', () => {
    const cases: [string, string, Record<string, unknown>, RegExp][] = [
      ['1501-byte text', SEND, { in: { groupId: 'beta', text: 'a'.repeat(1501) } }, /text: 1501 bytes in UTF-8, the limit is 1500 bytes/],
      ['501 Korean characters', SEND, { in: { groupId: 'beta', text: '가'.repeat(501) } }, /1503 bytes in UTF-8, the limit is 1500/],
      ['unknown device kind', REGISTER, { in: { name: 'X', consent: CONSENT, devices: [{ kind: 'FAX', address: '123' }] } }, /FAX/],
      ['bad email', REGISTER, { in: { name: 'X', consent: CONSENT, devices: [{ kind: 'EMAIL', address: 'not-an-email' }] } }, /devices\[0\]\.address/],
      ['bad phone', REGISTER, { in: { name: 'X', consent: CONSENT, devices: [{ kind: 'SMS', address: '010-1234-5678' }] } }, /E\.164/],
      ['bad iOS token', REGISTER, { in: { name: 'X', consent: CONSENT, devices: [{ kind: 'IOS', address: 'xyz' }] } }, /devices\[0\]\.address/],
      ['consent ending before it starts', REGISTER, { in: { name: 'X', consent: { start: '2027-01-01T00:00:00Z', end: '2026-06-01T00:00:00Z' }, devices: [{ kind: 'SMS', address: '+821012345678' }] } }, /consent\.end/],
      ['no devices', REGISTER, { in: { name: 'X', consent: CONSENT, devices: [] } }, /devices/],
      ['an email as a user id', REGISTER, { in: { userId: 'kim@example.com', name: 'X', consent: CONSENT, devices: [{ kind: 'SMS', address: '+821012345678' }] } }, /userId/],
      ['both targets', SEND, { in: { groupId: 'beta', userIds: ['u-1'], text: 'hi' } }, /exactly one of groupId or userIds/],
      ['no target', SEND, { in: { text: 'hi' } }, /exactly one of groupId or userIds/],
    ];
    it.each(cases)('%s', async (_name, query, variables, message) => {
      const head = await h.app.eventStore.headPosition();
      const r = await h.gql(key, query, variables);
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(message);
      expect(await h.app.eventStore.headPosition()).toBe(head);
    });

    it.each([9, 31, 0])('a delivery deadline of %i minutes', async (minutes) => {
      const head = await h.app.eventStore.headPosition();
      const r = await h.gql(h.operatorKey, `mutation($in: RegisterTenantInput!) { registerTenant(input: $in) { tenant { tenantId } } }`, {
        in: { tenantId: `bad-${minutes}`, name: 'Bad', deliveryDeadlineMinutes: minutes },
      });
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(new RegExp(`${minutes}.*between 10 and 30 minutes`));
      const change = await h.gql(admin, `mutation { changeDeliveryDeadline(minutes: ${minutes}) { tenantId } }`);
      expect(change.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(await h.app.eventStore.headPosition()).toBe(head);
    });

    it('an unknown device kind written inline in the query', async () => {
      const r = await h.gql(key, `mutation { addDevice(userId: "u-1", device: { kind: FAX, address: "1" }) { userId } }`);
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toContain('FAX');
    });

    it('a page size out of range', async () => {
      const r = await h.gql(key, `{ users(first: 501) { nodes { userId } } }`);
      expect(r.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(r.errors?.[0]?.message).toMatch(/1 to 500/);
    });
  });

  it('answers CONFLICT for a user or group id already taken, NOT_FOUND for unknown ones', async () => {
    const dup = await h.gql(key, REGISTER, { in: { userId: 'u-1', name: 'Again', consent: CONSENT, devices: [{ kind: 'SMS', address: '+821011112222' }] } });
    expect(dup.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const dupGroup = await h.gql(key, `mutation { createGroup(input: { groupId: "beta", name: "again" }) { groupId } }`);
    expect(dupGroup.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    for (const q of [
      `{ user(userId: "ghost") { userId } }`,
      `{ group(groupId: "ghost") { name } }`,
      `{ notification(notificationId: "ghost") { text } }`,
      `mutation { updateUser(input: { userId: "ghost", optIn: false }) { userId } }`,
      `mutation { sendNotification(input: { groupId: "ghost", text: "hi" }) { duplicate } }`,
      `mutation { registerUser(input: { name: "X", groupIds: ["ghost"], consent: { start: "2026-01-01T00:00:00Z", end: "2099-01-01T00:00:00Z" }, devices: [{ kind: SMS, address: "+821012345678" }] }) { userId } }`,
    ]) {
      const r = await h.gql(key, q);
      expect(r.errors?.[0]?.extensions?.code, q).toBe('NOT_FOUND');
    }
  });

  it('limits query depth and cost', async () => {
    const deep = await h.gql(key, `{ __schema { types { fields { type { ${'ofType { '.repeat(8)}name${' }'.repeat(8)} } } } } }`);
    expect(deep.errors?.[0]?.message).toMatch(/depth \d+ exceeds the limit of 12/);
    const costly = await h.gql(key, `{ a: users(first: 500) { nodes { ${USER_FIELDS} } } b: users(first: 500) { nodes { ${USER_FIELDS} } } c: users(first: 500) { nodes { ${USER_FIELDS} } } d: users(first: 500) { nodes { ${USER_FIELDS} } } }`);
    expect(costly.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(costly.errors?.[0]?.message).toMatch(/cost \d+ exceeds the limit of 20000/);
  });

  it('keeps everything across a restart', async () => {
    await h.app.settle();
    const dataDir = h.dataDir;
    await h.stop();
    h = await startHarness({ dataDir, env: API_ONLY });
    expect(h.app.operatorKey).toBeNull();
    const read = await h.ok<{ user: any }>(key, `{ user(userId: "u-1") { name } }`);
    expect(read.user.name).toBe('김민준');
  });
});
